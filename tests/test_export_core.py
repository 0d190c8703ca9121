"""``cvray export``'s pure cores, no trained model: detection matching and the parity numbers, the
verdict, the FP32 vs INT8 delta rows and rPC, the calibration set (typical + corrupted, the
robustness suite's pixels), and INT8 QDQ quantization with its float exclusions on a small graph."""
from __future__ import annotations

import numpy as np
import pytest

from cvray.export.parity import ParityTolerance, box_iou, match_detections, parity_stats, verdict
from cvray.export.suite import delta_rows


def _det(boxes, scores, labels, masks=None):
    d = {"boxes": np.asarray(boxes, np.float32).reshape(-1, 4), "scores": np.asarray(scores, np.float32),
         "labels": np.asarray(labels, np.int64)}
    if masks is not None:
        d["masks"] = np.asarray(masks, np.float32)
    return d


def test_box_iou_known_values():
    a = [[0, 0, 10, 10]]
    b = [[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 5, 5]]
    assert box_iou(a, b).tolist() == [[1.0, pytest.approx(50 / 150), 0.0, 0.25]]
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 4)


def test_matching_is_greedy_by_score_same_label_and_iou_half():
    ref = _det([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60], [80, 80, 90, 90]], [0.6, 0.9, 0.8, 0.7], [1, 1, 2, 1])
    cand = _det([[0, 0, 10, 10], [50, 50, 60, 60], [80, 80, 90, 90]], [0.5, 0.8, 0.7], [1, 2, 2])
    # ref 1 (score 0.9) takes the one box both ref 0 and ref 1 overlap; ref 3 has the wrong label there
    assert match_detections(ref, cand) == [(1, 0), (2, 1)]
    st = parity_stats([ref], [cand])
    assert (st["reference_detections"], st["candidate_detections"], st["matched"]) == (4, 3, 2)
    assert st["match_rate"] == pytest.approx(2 / (4 + 3 - 2))
    assert st["max_box_px"] == pytest.approx(1.0) and st["mean_box_px"] == pytest.approx(0.5)
    assert st["max_score"] == pytest.approx(0.4) and st["mean_score"] == pytest.approx(0.2)
    # below IoU 0.5: no match
    assert match_detections(_det([[0, 0, 10, 10]], [1], [1]), _det([[6, 0, 16, 10]], [1], [1])) == []


def test_parity_of_identical_outputs_and_mask_iou():
    m = np.zeros((2, 1, 8, 8), np.float32)
    m[0, 0, :4, :4] = 0.9
    m[1, 0, 4:, 4:] = 0.8
    m2 = m.copy()
    m2[1, 0, 4:, 6:] = 0.1  # half of the second mask drops under 0.5
    a = _det([[0, 0, 4, 4], [4, 4, 8, 8]], [0.9, 0.8], [1, 2], m)
    b = _det([[0, 0, 4, 4], [4, 4, 8, 8]], [0.9, 0.8], [1, 2], m2)
    st = parity_stats([a, a], [a, b])
    assert st["match_rate"] == 1.0 and st["max_box_px"] == 0.0 and st["max_score"] == 0.0
    assert st["mask_iou_min"] == pytest.approx(0.5) and st["mask_iou_mean"] == pytest.approx((3 + 0.5) / 4)
    empty = _det(np.zeros((0, 4)), [], [])
    assert parity_stats([empty], [empty])["match_rate"] == 1.0
    with pytest.raises(ValueError, match="2 reference outputs vs 1"):
        parity_stats([a, a], [a])


def test_verdict_names_every_failed_tolerance():
    tol = ParityTolerance(match_rate=1.0, box_px=1e-2, score=1e-4, mask_iou=0.99)
    good = {"match_rate": 1.0, "max_box_px": 2e-5, "max_score": 5e-7, "mask_iou_min": 1.0}
    assert verdict(good, tol) == (True, [])
    ok, why = verdict({"match_rate": 0.9, "max_box_px": 0.5, "max_score": 1e-3, "mask_iou_min": 0.5}, tol)
    assert not ok and len(why) == 4 and why[0].startswith("match rate 0.9000 < 1.0")
    assert verdict({**good, "mask_iou_min": None}, tol)[0]  # a box-only model: masks not held
    # INT8's bounds hold the mean over matched pairs: one far-off pair does not fail it, a shifted model does
    int8 = ParityTolerance(match_rate=0.8, box_px=2.0, score=0.05, mask_iou=0.85, on="mean")
    st = {"match_rate": 0.9, "max_box_px": 27.6, "mean_box_px": 1.2, "max_score": 0.42, "mean_score": 0.023,
          "mask_iou_min": 0.56, "mask_iou_mean": 0.94}  # measured on the 400-step demo model (docs/export.md)
    assert verdict(st, int8) == (True, [])
    ok, why = verdict({**st, "mean_box_px": 3.0, "mask_iou_mean": 0.5}, int8)
    assert not ok and why == ["mean |box delta| 3 px > 2.0", "mean mask IoU 0.5000 < 0.85"]


def test_delta_rows_and_rpc_per_corruption():
    def row(v, c, s, ap, ars=0.5):
        return {"variant": v, "corruption": c, "severity": s, "family": "clean" if c == "clean" else "noise",
                "images": 4, "detections": 10, "bbox_AP": ap, "bbox_AP50": ap + 0.1, "bbox_ARs": ars, "segm_AP": ap / 2}

    rows = [row("fp32", "clean", 0, 0.40), row("int8", "clean", 0, 0.38, 0.45),
            row("fp32", "gaussian_noise", 1, 0.30), row("int8", "gaussian_noise", 1, 0.25),
            row("fp32", "gaussian_noise", 3, 0.10), row("int8", "gaussian_noise", 3, 0.12)]
    out, summary = delta_rows(rows, model="m", seed=0)
    assert [(r["corruption"], r["severity"]) for r in out] == [("clean", 0), ("gaussian_noise", 1), ("gaussian_noise", 3)]
    clean, s1, s3 = out
    assert clean["delta_bbox_AP"] == pytest.approx(-0.02) and clean["delta_bbox_ARs"] == pytest.approx(-0.05)
    assert clean.get("fp32_rPC") is None  # rPC is a corruption's (null on the clean row)
    assert s1["delta_bbox_AP"] == pytest.approx(-0.05) and s3["delta_bbox_AP"] == pytest.approx(0.02)
    assert s1["fp32_rPC"] == pytest.approx(0.20 / 0.40) and s1["int8_rPC"] == pytest.approx(0.185 / 0.38)
    assert s3["delta_rPC"] == s1["delta_rPC"] == pytest.approx(0.185 / 0.38 - 0.5)
    assert summary["mean_delta_bbox_AP"] == pytest.approx(-0.015)
    assert summary["worst_cell"] == {"corruption": "gaussian_noise", "severity": 1, "delta_bbox_AP": pytest.approx(-0.05)}


def test_calibration_set_is_clean_plus_the_suites_corrupted_pixels():
    from cvray.export.quantize import calibration_images
    from cvray.robustness.corruptions import corrupt, corruption_rng

    rng = np.random.default_rng(0)
    ims = [rng.integers(0, 255, (32, 40, 3), dtype=np.uint8) for _ in range(3)]
    out = list(calibration_images(ims, corruptions=["fog", "gaussian_noise"], severities=[2, 4], seed=7,
                                  image_ids=[11, 12, 13]))
    assert len(out) == 3 * (1 + 2 * 2)
    assert [c for c, _ in out[:3]] == ["clean"] * 3 and all((a == b).all() for (_, a), b in zip(out[:3], ims))
    cond, im = out[3 + 2 * 3 + 1]  # gaussian_noise/2, image 12
    assert cond == "gaussian_noise/2"
    assert (im == corrupt(ims[1], "gaussian_noise", 2, corruption_rng(7, 12, "gaussian_noise", 2))).all()


def test_int8_quantizes_conv_and_gemm_but_keeps_the_excluded_and_other_ops_float(tmp_path):
    """A small conv net exported with the legacy exporter: every Conv / Gemm but the one named like
    a prediction layer gets Q/DQ; its output stays close to FP32."""
    import io

    import onnx
    import onnxruntime as ort
    import torch
    from torch import nn

    from cvray.export.quantize import excluded_nodes, quantize_int8

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
            self.cls_logits = nn.Conv2d(8, 2, 1)
            self.fc = nn.Linear(8 * 8 * 8, 4)

        def forward(self, x):
            f = self.body(x[None])
            return self.cls_logits(f).exp(), self.fc(f.flatten(1))

    torch.manual_seed(0)
    m = Head().eval()
    buf = io.BytesIO()
    torch.onnx.export(m, (torch.rand(3, 8, 8),), buf, dynamo=False, opset_version=17, input_names=["image"])
    fp32 = buf.getvalue()
    proto = onnx.load_from_string(fp32)
    assert excluded_nodes(proto, ["/cls_logits"]) == ["/cls_logits/Conv"]
    rng = np.random.default_rng(0)
    cal = [rng.integers(0, 255, (8, 8, 3), dtype=np.uint8) for _ in range(16)]
    int8, info = quantize_int8(fp32, cal, exclude=["/cls_logits"])
    assert info["format"] == "QDQ" and info["excluded_nodes"] == ["/cls_logits/Conv"]
    assert info["quantized_nodes"] == 3 and info["float_nodes"] == ["/cls_logits/Conv"]
    assert "Exp" in info["float_ops"]
    x = {"image": cal[0].transpose(2, 0, 1).astype(np.float32) / 255}
    a = ort.InferenceSession(fp32, providers=["CPUExecutionProvider"]).run(None, x)
    b = ort.InferenceSession(int8, providers=["CPUExecutionProvider"]).run(None, x)
    for u, v in zip(a, b):
        assert np.abs(u - v).max() < 0.05 * (np.abs(u).max() + 1e-6)
        assert not np.array_equal(u, v)  # it really is another (quantized) graph


def test_onnx_detector_protocol_pickles_and_refuses_training(tmp_path):
    """The backend's module on a stand-in graph with the detector's output names: dict of tensors per
    image (labels int64), same outputs after a pickle round trip (Ray ships it), inference only."""
    import pickle

    import torch
    from torch import nn

    from cvray.models.onnx_backend import OnnxDetector

    class Fake(nn.Module):
        def forward(self, x):
            s = x.mean().reshape(1)
            return torch.cat([s, s + 1, s + 2, s + 3])[None], (s * 10).long(), s

    path = tmp_path / "fake.onnx"
    torch.onnx.export(Fake(), (torch.rand(3, 8, 8),), str(path), dynamo=False, opset_version=17,
                      input_names=["image"], output_names=["boxes", "labels", "scores"],
                      dynamic_axes={"image": {1: "h", 2: "w"}})
    det = OnnxDetector(str(path), threads=1).eval().to("cpu")
    imgs = [torch.full((3, 8, 8), 0.25), torch.full((3, 6, 10), 0.5)]
    out = det(imgs)
    assert [sorted(o) for o in out] == [["boxes", "labels", "scores"]] * 2
    assert out[1]["boxes"].tolist() == [[0.5, 1.5, 2.5, 3.5]] and out[1]["labels"].dtype == torch.int64
    again = pickle.loads(pickle.dumps(det))(imgs)
    assert all(torch.equal(a[k], b[k]) for a, b in zip(out, again) for k in a)
    with pytest.raises(RuntimeError, match="inference only"):
        det.train()(imgs)


def test_export_section_and_onnx_backend_config():
    from cvray.config import load_config
    from cvray.models import ModelConfig

    cfg = load_config(None, ["export.corruptions=fog,contrast", "export.severities=1-3"])
    assert cfg.export.corruptions == ["fog", "contrast"] and cfg.export.severities == [1, 2, 3]
    assert cfg.export.opset == 17 and cfg.export.tol_box_px == 1e-2
    with pytest.raises(ValueError, match="severities are 1..5"):
        load_config(None, ["export.severities=0"])
    with pytest.raises(ValueError, match="needs model.weights"):
        ModelConfig(backend="onnx", num_classes=2)
    c = ModelConfig(backend="onnx", arch="maskrcnn", weights="m.onnx", num_classes=2)
    assert c.task == "instance"
