"""``cvray export onnx``: torchvision detectors to ONNX (legacy exporter), parity with eager,
INT8 post-training static quantization and its deltas on the corruption suite (docs/export.md)."""
