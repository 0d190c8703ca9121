"""Synthetic datasets with exact ground truth (COCO instance segmentation, MOT sequences).

Pure numpy / OpenCV / pycocotools; deterministic by seed. See :mod:`cvray.data.synth_coco` and
:mod:`cvray.data.synth_mot` for the conventions each format follows.

Example::

    from cvray.data.synth import make_coco, make_mot
    coco = make_coco("/tmp/synth", n_images=24, seed=0)
    mot = make_mot("/tmp/synth", n_videos=2, seed=0, camera_pan=True)
"""
from __future__ import annotations

from cvray.data.synth_coco import SPLITS, CocoSynthConfig, make_coco
from cvray.data.synth_draw import SHAPE_NAMES
from cvray.data.synth_mot import DetNoise, MotSynthConfig, make_mot

__all__ = ["SHAPE_NAMES", "SPLITS", "CocoSynthConfig", "DetNoise", "MotSynthConfig",
           "make_coco", "make_mot"]
