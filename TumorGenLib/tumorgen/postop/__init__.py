"""Post-operative prediction: a case library, tumor-guided retrieval, the composite prompt and the conditioned generator."""
