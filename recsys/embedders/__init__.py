"""Embedders: decoded audio, video frames and text in, fixed-length vectors or feature sequences out.

``base.Embedder`` is the contract of the audio embedders.
"""
