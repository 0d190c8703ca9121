"""Evaluation: COCO/VOC AP, error analysis, curves, semantic metrics, QA export."""
