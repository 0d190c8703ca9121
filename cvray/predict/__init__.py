"""Batch inference: records, post-processing, geometry, Ray Data pipeline (see pipeline.py)."""
import cvray.config  # noqa: F401  (compose ExperimentConfig before our config section imports it)
