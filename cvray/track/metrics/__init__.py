"""MOT metrics through motmetrics (CLEAR, identity) and trackeval (HOTA), one file per family."""
from cvray.track.metrics.clear import ClearMetrics
from cvray.track.metrics.evaluate import MOTEvaluator, SUMMARY_KEYS, combine, evaluate_sequence, summarize
from cvray.track.metrics.hota import HotaMetrics
from cvray.track.metrics.identity import IdentityMetrics

__all__ = ["ClearMetrics", "HotaMetrics", "IdentityMetrics", "MOTEvaluator", "SUMMARY_KEYS", "combine",
           "evaluate_sequence", "summarize"]
