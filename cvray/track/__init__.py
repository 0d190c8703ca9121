"""Multi-object tracking: a ByteTrack-style tracker (pure numpy), MOT metrics, diagnostics.

Pure cores (``kalman``, ``matching``, ``track``, ``tracker``, ``metrics``) never import Ray; the
per-sequence actors live in :mod:`cvray.track.distributed`.
"""
