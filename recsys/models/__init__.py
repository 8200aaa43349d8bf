"""Models: PyTorch modules and Lightning modules; no I/O."""
