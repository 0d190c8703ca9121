"""Drift monitoring cores: image quality features, prediction proxies, PSI / KS, windows and alerts.

Pure numpy / scipy / OpenCV / Pillow (no Ray). Typical use, one frame at a time::

    from cvray.drift import DriftMonitor, MonitorConfig, image_features, luma_histogram
    mon = DriftMonitor(MonitorConfig(window_frames=500))
    for t, rgb, dets in stream:
        alerts = mon.update("cam0", t, image_features(rgb), luma_hist=luma_histogram(rgb),
                            predictions={"scores": dets.scores, "labels": dets.labels})
    mon.flush()
    tables = mon.compute()   # {"drift": rows, "alerts": rows}
"""
from cvray.drift.alerts import DEFAULT_RULES, Rule, Signal, evaluate_rule
from cvray.drift.features import FEATURES, frame_timing, image_features, jpeg_quality, luma_histogram
from cvray.drift.matrix import SHIFT_MATRIX, SHIFT_TYPES
from cvray.drift.monitor import DriftMonitor, MonitorConfig, compare
from cvray.drift.proxies import PredictionProxies
from cvray.drift.stats import KS_PVALUE, PSI_SIGNIFICANT, PSI_STABLE, ks, psi, psi_categorical
from cvray.drift.window import WindowAccumulator, summary_from_json, summary_to_json

__all__ = ["DEFAULT_RULES", "FEATURES", "KS_PVALUE", "PSI_SIGNIFICANT", "PSI_STABLE", "SHIFT_MATRIX",
           "SHIFT_TYPES", "DriftMonitor", "MonitorConfig", "PredictionProxies", "Rule", "Signal",
           "WindowAccumulator", "compare", "evaluate_rule", "frame_timing", "image_features",
           "jpeg_quality", "ks", "luma_histogram", "psi", "psi_categorical", "summary_from_json",
           "summary_to_json"]
