"""``cvray export onnx`` on a trained model (the robustness tests' CPU Mask R-CNN, 80 steps on the
easy synthetic set): FP32 ONNX parity with eager torch (every detection matched, deltas under the
tolerances, at the traced size and another one), the ``onnx`` backend through the repo's
Predictor, the CLI end to end on one Ray worker (INT8, its deltas per corruption x severity, the
tracking deltas) with the run then used as ``--model RUN`` / ``RUN:int8``, and the refusals."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cvray.io import storage
from cvray.predict.options import GeometryConfig

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "cvray.cli.main"]
GEOMETRY = GeometryConfig(size=(128, 128))


@pytest.fixture(scope="module")
def model(cpu_test_model):
    return cpu_test_model


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    """(eager model, its config, the .onnx path, 8 letterboxed val images) -- exported in-process."""
    from cvray.export.onnx_export import export_onnx
    from cvray.export.workflow import _tensor, read_images
    from cvray.models import build_model
    from cvray.predict.config import PredictConfig
    from cvray.predict.model_spec import resolve_model
    from cvray.predict.sources import list_units

    torch.set_num_threads(1)
    run_uri, root = model
    cfg, _ = resolve_model(run_uri, PredictConfig().model, 2)
    eager = build_model(cfg).eval()
    units = sorted(list_units(f"{root}/annotations/instances_val.json"), key=lambda u: u["image_id"])
    _, images = read_images(units, 8, GEOMETRY)
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    path.write_bytes(export_onnx(eager, cfg, _tensor(images[0]), opset=17, metadata={"cvray.category_ids": [1, 2]}))
    return eager, cfg, str(path), images


def _outputs(model, images):
    with torch.inference_mode():
        return [{k: v.numpy() for k, v in model([torch.from_numpy(im).permute(2, 0, 1).float() / 255])[0].items()}
                for im in images]


def test_fp32_onnx_matches_eager_on_every_detection(exported):
    """Measured on this model (its 12 val images; the test takes 8): 557 detections, every one matched, max |box
    delta| 2.3e-5 px, max |score delta| 4.5e-7, mask IoU 1.0 -- the tolerances (1e-2 px, 1e-4,
    0.99) hold with ~400x margin. A 96 x 128 image (not the traced 128 x 128) too: the axes are dynamic."""
    from cvray.export.parity import ParityTolerance, parity_stats, verdict
    from cvray.models.onnx_backend import OnnxDetector, read_model_config

    eager, cfg, path, images = exported
    onnx_model = OnnxDetector(path).eval()
    assert onnx_model.providers == ["CPUExecutionProvider"] and onnx_model.output_names == [
        "boxes", "labels", "scores", "masks"]
    ref, out = _outputs(eager, images), _outputs(onnx_model, images)
    st = parity_stats(ref, out)
    assert st["reference_detections"] > 100, st  # a trained model: parity is about real detections
    assert st["match_rate"] == 1.0 and st["candidate_detections"] == st["reference_detections"], st
    assert st["max_box_px"] < 1e-2 and st["max_score"] < 1e-4 and st["mask_iou_min"] >= 0.99, st
    assert verdict(st, ParityTolerance(1.0, 1e-2, 1e-4, 0.99)) == (True, [])
    assert out[0]["labels"].dtype == np.int64 and out[0]["masks"].shape[1:] == (1, 128, 128)
    other = [np.ascontiguousarray(im[16:112]) for im in images[:3]]  # 96 x 128
    st2 = parity_stats(_outputs(eager, other), _outputs(onnx_model, other))
    assert st2["reference_detections"] > 0 and st2["match_rate"] == 1.0 and st2["max_box_px"] < 1e-2, st2
    meta = read_model_config(path)
    assert meta["arch"] == "maskrcnn" and meta["num_classes"] == 2 and meta["weights"] is None


@pytest.mark.parametrize("arch", ["retinanet", "fcos"])
def test_one_stage_detectors_export_with_parity(arch, model, tmp_path):
    """RetinaNet and FCOS on the demo backbone, trained 40 steps (random heads tie every score, so
    parity would be about ties): every detection matched at the traced size and at 96 x 128. Measured
    after 150 steps on 46 images: 4285 / 4600 detections all matched, max |box delta| 1.5e-5 / 2.7e-5 px."""
    from cvray.export.onnx_export import export_onnx
    from cvray.export.parity import parity_stats
    from cvray.export.workflow import _run_model, _tensor, read_images
    from cvray.models import build_model
    from cvray.models.onnx_backend import OnnxDetector
    from cvray.predict.config import PredictConfig
    from cvray.predict.model_spec import resolve_model
    from cvray.predict.sources import list_units
    from cvray.runs import start_run
    from cvray.train.config import TrainConfig
    from cvray.train.demo import DEMO_TRAIN
    from cvray.train.workflow import TrainInputs, run_train

    root = model[1]
    net = {k: v for k, v in DEMO_TRAIN["model"].items() if not k.startswith(("rpn_", "box_batch", "mask_"))}
    cfg = TrainConfig.model_validate({**DEMO_TRAIN, "model": {**net, "arch": arch}, "max_iter": 40, "batch_size": 4,
                                      "eval_period": 0, "checkpoint_period": 40, "tensorboard": False,
                                      "torch_threads": 1})
    with start_run("train", config={"train": cfg.model_dump(mode="json")}, root=str(tmp_path / "runs"), seed=0) as run:
        run_train(run, cfg, TrainInputs(root, seed=0), ray=False)
    torch.set_num_threads(1)
    mcfg, _ = resolve_model(run.uri, PredictConfig().model, 2)
    eager = build_model(mcfg).eval()
    units = sorted(list_units(f"{root}/annotations/instances_val.json"), key=lambda u: u["image_id"])
    _, images = read_images(units, 6, GEOMETRY)
    path = tmp_path / f"{arch}.onnx"
    path.write_bytes(export_onnx(eager, mcfg, _tensor(images[0])))
    onnx_model = OnnxDetector(str(path)).eval()
    assert onnx_model.output_names == ["boxes", "scores", "labels"]  # the one-stage dict order
    for ims in (images, [np.ascontiguousarray(im[16:112]) for im in images[:3]]):
        st = parity_stats(_run_model(eager, ims, 0)[0], _run_model(onnx_model, ims, 0)[0])
        assert st["reference_detections"] >= 10 * len(ims), st
        assert st["match_rate"] == 1.0 and st["max_box_px"] < 1e-2 and st["max_score"] < 1e-4, st
    # INT8 runs on every image (RetinaNet's graph failed on all of them while ONNX's shape annotations
    # were left in) and keeps its float prediction layers
    from cvray.export.quantize import quantize_int8

    int8, info = quantize_int8(path.read_bytes(), images[:4])
    assert info["float_nodes"] and all("/head/" in n for n in info["float_nodes"]), info["float_nodes"]
    (tmp_path / "int8.onnx").write_bytes(int8)
    st = parity_stats(_run_model(eager, images, 0)[0], _run_model(OnnxDetector(str(tmp_path / "int8.onnx")).eval(),
                                                                 images, 0)[0])
    assert 0.8 < st["match_rate"] <= 1.0 and st["mean_box_px"] < 2.0, st


def test_onnx_backend_gives_the_same_detections_through_the_predictor(model, exported):
    """``model.backend=onnx`` (and a bare .onnx as --model) behind cvray's Predictor: the same
    records, letterbox mapping and post-processing policy included, as the eager model."""
    from cvray.predict.config import PredictConfig
    from cvray.predict.engine import ModelFactory, Predictor, predict_local
    from cvray.predict.model_spec import resolve_model
    from cvray.predict.sources import list_units

    _, cfg, path, _ = exported
    onnx_cfg, source = resolve_model(path, PredictConfig().model, None)
    assert onnx_cfg.backend == "onnx" and onnx_cfg.weights == path and onnx_cfg.arch == "maskrcnn" and source == path
    units = sorted(list_units(f"{model[1]}/annotations/instances_val.json"), key=lambda u: u["image_id"])[:4]
    a, ia = predict_local(units, Predictor(ModelFactory(cfg), category_ids=[1, 2], device="cpu"), GEOMETRY)
    b, ib = predict_local(units, Predictor(ModelFactory(onnx_cfg), category_ids=[1, 2], device="cpu"), GEOMETRY)
    assert not ia and not ib and len(a) == len(b) == 4
    assert sum(len(d.scores) for d in a) > 20
    for x, y in zip(a, b):
        assert x.image_id == y.image_id and x.labels.tolist() == y.labels.tolist()
        np.testing.assert_allclose(x.boxes, y.boxes, atol=1e-2)
        np.testing.assert_allclose(x.scores, y.scores, atol=1e-4)
        assert [m["counts"] for m in x.masks] == [m["counts"] for m in y.masks]


def test_cli_end_to_end_int8_suite_and_the_run_as_a_model(model, tmp_path):
    """On one Ray worker: FP32 + INT8 exported, both parity rows, the INT8 deltas per corruption x
    severity (+ clean) with finite AP / small-object recall / rPC, the tracking deltas (ID
    switches) on a MOT sequence; then the run resolves as --model RUN and RUN:int8."""
    from cvray.data.synth_mot import make_mot
    from cvray.predict.config import PredictConfig
    from cvray.predict.engine import ModelFactory, Predictor, predict_local
    from cvray.predict.model_spec import resolve_model, run_categories
    from cvray.predict.sources import list_units

    run_uri, root = model
    mot = make_mot(tmp_path / "mot", n_videos=1, seed=0, n_frames=8)["root"]
    p = subprocess.run([*CLI, "export", "onnx", "--model", run_uri, "--int8", "--calibration-data",
                        f"{root}/annotations/instances_train.json", "--suite", root, "--suite-mot", mot,
                        "--corruptions", "gaussian_noise", "--severities", "1,4", "predict.geometry.size=[128,128]",
                        "export.calibration_images=4", "export.calibration_corruptions=fog", "export.parity_images=4",
                        "export.calibration_severities=3", "export.max_images=6", "--root", str(tmp_path / "runs"),
                        "--json"], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout)
    assert out["passed"] is True and out["opset"] == 17 and out["input_size"] == [128, 128]
    assert out["versions"]["onnxruntime"].startswith("1.31")
    assert "cvray export onnx:" in p.stderr  # progress lines
    parity = storage.read_table_dir(storage.join(out["run_uri"], "tables", "export_parity")).to_pylist()
    assert [r["variant"] for r in parity] == ["fp32", "int8"]
    fp32, int8 = parity
    assert fp32["match_rate"] == 1.0 and fp32["max_box_px"] < 1e-2 and fp32["passed"] and fp32["images"] == 4
    assert 0.5 < int8["match_rate"] < 1.0 and int8["model_bytes"] < fp32["model_bytes"] / 2  # INT8 weights
    assert fp32["eager_p50_ms"] > 0 and fp32["onnx_p50_ms"] > 0
    deltas = storage.read_table_dir(storage.join(out["run_uri"], "tables", "int8_deltas")).to_pylist()
    assert [(r["corruption"], r["severity"]) for r in deltas] == [("clean", 0), ("gaussian_noise", 1),
                                                                  ("gaussian_noise", 4)]
    for r in deltas:
        assert r["images"] == 6
        for k in ("bbox_AP", "bbox_AP50", "bbox_ARs", "segm_AP"):
            assert np.isfinite([r[f"fp32_{k}"], r[f"int8_{k}"], r[f"delta_{k}"]]).all(), (k, r)
            assert r[f"delta_{k}"] == pytest.approx(r[f"int8_{k}"] - r[f"fp32_{k}"])
    assert deltas[0]["fp32_bbox_AP"] > 0.05 and np.isfinite([deltas[1]["fp32_rPC"], deltas[1]["delta_rPC"]]).all()
    assert deltas[1]["fp32_rPC"] == deltas[2]["fp32_rPC"]  # one rPC per corruption
    track = storage.read_table_dir(storage.join(out["run_uri"], "tables", "int8_tracking_deltas")).to_pylist()
    assert [(r["condition"], r["severity"]) for r in track] == [("clean", 0), ("gaussian_noise", 1),
                                                                ("gaussian_noise", 4)]
    assert all(r["frames"] == 8 and r["delta_IDSW"] == r["int8_IDSW"] - r["fp32_IDSW"] for r in track)
    q = storage.read_json(storage.join(out["run_uri"], "manifest.json"))["export"]["quantization"]
    assert "/roi_heads/box_predictor/bbox_pred/Gemm" in q["float_nodes"] and q["quantized_nodes"] > 20
    assert {"NonMaxSuppression", "RoiAlign"} <= set(q["float_ops"])
    # the export run is a model
    assert run_categories(out["run_uri"]) == [1, 2]
    units = sorted(list_units(f"{root}/annotations/instances_val.json"), key=lambda u: u["image_id"])[:2]
    for spec, name in ((out["run_uri"], "model.onnx"), (out["run_uri"] + ":int8", "model.int8.onnx")):
        cfg, source = resolve_model(spec, PredictConfig().model, None)
        assert cfg.backend == "onnx" and cfg.weights.endswith(name) and name in source
        dets, issues = predict_local(units, Predictor(ModelFactory(cfg), category_ids=[1, 2], device="cpu"), GEOMETRY)
        assert not issues and sum(len(d.scores) for d in dets) > 0


def test_refusals_exit_2_in_one_line(model, tmp_path, capsys):
    from cvray.cli.main import main

    run_uri, root = model
    ann = f"{root}/annotations/instances_val.json"
    cases = (
        (["--model", str(tmp_path / "nope")], "no such run folder"),
        (["--model", run_uri, "--input", str(tmp_path / "missing")], "--input"),
        (["--model", run_uri, "--int8"], "--int8 needs --calibration-data"),
        (["--model", run_uri, "--suite", root], "add --int8"),
        (["--model", run_uri, "--int8", "--calibration-data", ann, "--suite", root, "--corruptions", "nosuch"],
         "unknown corruption"),
        (["--model", "deeplabv3:resnet50", "--input", ann], "exports detection / instance models"),
        (["--model", run_uri + ":int8", "--input", ann], "names a variant of a cvray export onnx run"),
        (["--model", run_uri, "export.opset=11"], "export.opset"),
        ([], "needs --model"),
    )
    for argv, words in cases:
        code = main(["export", "onnx", *argv, "--root", str(tmp_path / "runs")])
        err = capsys.readouterr().err
        assert code == 2 and words in err and "Traceback" not in err and len(err.strip().splitlines()) <= 2, (argv, err)
    assert not (tmp_path / "runs").exists()  # refused before any run exists


def test_an_unreadable_image_is_an_issue_row_and_the_export_goes_on(model, tmp_path, capsys):
    """One broken file among the parity images: a row of the issues table naming it, the export
    done on the others (exit 0); only broken files: one line, exit 2 -- also when the check runs
    in the Ray task (the worker's InputError reaches the user as itself, not as a RayTaskError)."""
    import shutil

    from cvray.cli.main import main

    run_uri, root = model
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for src in sorted((Path(root) / "images" / "val").glob("*.jpg"))[:2]:
        shutil.copy(src, mixed / src.name)
    (mixed / "broken.jpg").write_bytes(b"not a jpeg")
    code = main(["export", "onnx", "--model", run_uri, "--input", str(mixed), "--no-ray", "--json",
                 "predict.geometry.size=[128,128]", "--root", str(tmp_path / "runs")])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["issues"] == 1 and out["parity_images"] == 2
    rows = storage.read_table_dir(storage.join(out["run_uri"], "tables", "issues")).to_pylist()
    assert [(r["stage"], r["severity"], Path(r["file"]).name) for r in rows] == [("export", "error", "broken.jpg")]

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.jpg").write_bytes(b"nope")
    p = subprocess.run([*CLI, "export", "onnx", "--model", run_uri, "--input", str(bad), "--root",
                        str(tmp_path / "runs2")], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert p.returncode == 2 and "no readable image" in p.stderr and "Traceback" not in p.stderr, p.stderr[-2000:]
