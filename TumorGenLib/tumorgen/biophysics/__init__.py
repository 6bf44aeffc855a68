"""Biophysics: Fisher–Kolmogorov growth, concentration editing and labels, the growth ODE."""
