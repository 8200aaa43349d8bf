"""Recommenders and scoring services built on the models and the vector store."""
