"""``cvray latency``: a per-stage latency budget sheet of the inference pipeline (see docs/latency.md)."""
