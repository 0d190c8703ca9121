"""Calibration of detection scores: matching to GT, ECE / D-ECE / LaECE, calibrators, diagrams.

Pure cores (numpy / scipy / matplotlib, never Ray):

* ``cvray.calibrate.matching``    — ``match_detections``: COCO-rule TP flags and IoUs per detection;
* ``cvray.calibrate.metrics``     — ``ece``, ``dece`` (Küppers et al. 2020), ``laece`` (Oksuz et al. 2023);
* ``cvray.calibrate.calibrators`` — temperature / Platt / isotonic (optionally per class), JSON round trip;
* ``cvray.calibrate.diagrams``    — reliability diagrams as PNG (and the policy's slice plot);
* ``cvray.calibrate.decision``    — act / observe / abstain thresholds per class, ``policy.json``,
  ``DecisionPolicy`` (applied by ``cvray predict`` with ``predict.policy``);
* ``cvray.calibrate.policy_report`` — the policy scored on every slice (``policy_slices`` table).

The stage around them: ``config.py`` (the ``calibrate:`` section), ``workflow.py``
(``prepare_calibrate`` / ``run_calibrate``, one slice without Ray: ``SliceWorker``, the table
schemas), ``distributed.py`` (the Ray model actors), ``policy.py`` (``calibrator.json``, applied by
``cvray predict``); docs/calibrate.md.

Import from the submodules; this package ``__init__`` stays import-free so the CLI can load the
config without pulling in scipy or matplotlib.
"""
