"""Robustness: image corruptions (COCO-C / ImageNet-C semantics) for robustness suites.

``cvray.robustness.corruptions`` holds the runtime corruptions; ``cvray.robustness.reference``
is a test/benchmark-only shim around the ``imagecorruptions`` reference package.
"""
