"""Batch inference: records, post-processing, geometry, Ray Data pipeline (see pipeline.py)."""
