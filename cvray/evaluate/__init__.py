"""Evaluation: COCO/VOC AP, error analysis, curves, semantic metrics, QA export."""
import cvray.config  # noqa: F401  (compose ExperimentConfig before our config section imports it)
