"""Embedders: decoded media in, fixed-length vectors out (see ``base.Embedder`` for the contract)."""
