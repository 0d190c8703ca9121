"""Multi-object tracking: a ByteTrack-style tracker (pure numpy), MOT metrics, diagnostics.

Pure cores (``kalman``, ``matching``, ``track``, ``tracker``, ``metrics``) never import Ray; the
per-sequence actors live in :mod:`cvray.track.distributed`.
"""
# Compose ExperimentConfig before our section model is imported on its own: cvray.config imports
# cvray.track.config while it builds ExperimentConfig, so importing that module first would
# otherwise leave the `track:` section out of the composed config.
import cvray.config  # noqa: F401,E402
