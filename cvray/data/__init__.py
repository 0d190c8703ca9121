"""Datasets: synthetic generators, COCO/MOT readers, Ray Data ingest."""
