"""Embedders: audio, video frames and text turned into feature vectors and sequences."""
