"""Calibration of detection scores: matching to GT, ECE / D-ECE / LaECE, calibrators, diagrams.

Pure cores (numpy / scipy / matplotlib, never Ray):

* ``cvray.calibrate.matching``    — ``match_detections``: COCO-rule TP flags and IoUs per detection;
* ``cvray.calibrate.metrics``     — ``ece``, ``dece`` (Küppers et al. 2020), ``laece`` (Oksuz et al. 2023);
* ``cvray.calibrate.calibrators`` — temperature / Platt / isotonic (optionally per class), JSON round trip;
* ``cvray.calibrate.diagrams``    — reliability diagrams as PNG.

Import from the submodules; this package ``__init__`` stays import-free so the CLI can load the
config without pulling in scipy or matplotlib.
"""
