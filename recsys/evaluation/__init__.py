"""Evaluation: metrics, splits, reports and probing."""
