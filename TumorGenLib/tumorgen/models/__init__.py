"""The generative models: MONAI latent diffusion with a ControlNet on tissue and concentration maps.

:mod:`~tumorgen.models.config` reads the size configs (``tiny``, ``full``),
:mod:`~tumorgen.models.networks` builds the networks from MONAI, and
:mod:`~tumorgen.models.weights` saves and loads weights safely (safetensors
with a SHA-256; never unpickled).
"""
