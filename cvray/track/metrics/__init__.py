"""MOT metrics, one file per family: CLEAR as TrackEval computes it (``clear_trackeval``) and in the
devkit convention through motmetrics (``clear``), identity through motmetrics, HOTA through trackeval."""
from cvray.track.metrics.clear import DevkitClearMetrics
from cvray.track.metrics.clear_trackeval import TrackEvalClearMetrics
from cvray.track.metrics.evaluate import (DEVKIT_KEYS, MOTEvaluator, SUMMARY_KEYS, combine, evaluate_sequence,
                                          summarize)
from cvray.track.metrics.hota import HotaMetrics
from cvray.track.metrics.identity import IdentityMetrics

__all__ = ["DEVKIT_KEYS", "DevkitClearMetrics", "HotaMetrics", "IdentityMetrics", "MOTEvaluator", "SUMMARY_KEYS",
           "TrackEvalClearMetrics", "combine", "evaluate_sequence", "summarize"]
