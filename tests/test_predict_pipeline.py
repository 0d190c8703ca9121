"""The Ray Data predict pipeline: row accounting under bad input, equality with the plain loop,
videos (frame index + timestamp), S3 in and out, and the CLI."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from cvray.io import storage
from cvray.predict.config import GeometryConfig, PostprocessConfig, PredictConfig
from cvray.predict.engine import ModelFactory, Predictor, predict_local
from cvray.predict.distributed import predict_ray
from cvray.predict.records import detections_from_table
from cvray.predict.sources import list_units
from cvray.runs import start_run

from predict_helpers import tiny_model_config, write_images, write_video


class NaNOnBrightImages:
    """A real detector whose output is poisoned with NaN for images whose mean exceeds 200
    (stands in for a diverged model on some inputs)."""

    def __init__(self, factory):
        self.factory = factory

    def __call__(self):
        import torch

        inner = self.factory()

        class Wrapped(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = inner

            def forward(self, images):
                outs = self.inner(images)
                for im, o in zip(images, outs):
                    if float(im.mean()) > 200 / 255:
                        o["boxes"] = o["boxes"] * float("nan")
                return outs

        return Wrapped()


@pytest.fixture(scope="module", autouse=True)
def _pickle_test_classes_by_value():
    """Ray workers cannot import this test module: ship its classes by value."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def model_cfg(tmp_path_factory):
    return tiny_model_config(tmp_path_factory.mktemp("model"))


def _pcfg(**kw):
    return PredictConfig(batch_size=3, chunk_size=4, geometry=GeometryConfig(size=(64, 64)),
                         postprocess=PostprocessConfig(score_threshold=0.0), **kw)


def test_row_accounting_with_bad_images_and_nan(ray_session, tmp_path, model_cfg):
    folder = tmp_path / "imgs"
    write_images(folder, 7)
    (folder / "corrupt.jpg").write_bytes(b"not a jpeg at all")
    (folder / "empty.png").write_bytes(b"")
    import cv2
    cv2.imwrite(str(folder / "white.png"), np.full((40, 40, 3), 255, np.uint8))   # → NaN output
    units = list_units(str(folder))
    assert len(units) == 10
    factory = NaNOnBrightImages(ModelFactory(model_cfg))
    with start_run("predict", root=str(tmp_path / "runs")) as run:
        summary = predict_ray(units, run, cfg=_pcfg(), model_factory=factory)
    assert summary["images"] == 10
    assert summary["prediction_rows"] == 7 and summary["issue_rows"] == 3
    assert summary["actors"] == 2          # default: one single-CPU replica per CPU of the cluster
    preds = run.read_table("predictions")
    issues = run.read_table("issues").to_pylist()
    assert preds.num_rows + len(issues) == 10
    rules = {r["file"].rsplit("/", 1)[-1]: r["rule"] for r in issues}
    assert rules == {"corrupt.jpg": "image.unreadable", "empty.png": "image.zero_byte",
                     "white.png": "prediction.nan"}
    ids = sorted(preds.column("image_id").to_pylist() + [r["image_id"] for r in issues])
    assert ids == list(range(1, 11))  # every input exactly once
    # parts: one per chunk of 4 inputs (idempotent names)
    parts = sorted(p.rsplit("/", 1)[-1] for p in storage.list_files(run.path("tables", "predictions")))
    assert parts == ["part-000000.parquet", "part-000001.parquet", "part-000002.parquet"]
    # idempotent per block: running the same inputs into the same run rewrites the same parts
    again = predict_ray(list_units(str(folder)), run, cfg=_pcfg(), model_factory=factory)
    assert again["prediction_rows"] == 7
    assert run.read_table("predictions").num_rows == 7 and run.read_table("issues").num_rows == 3


def test_ray_pipeline_equals_plain_loop_and_maps_to_original(ray_session, tmp_path, model_cfg):
    folder = tmp_path / "imgs"
    write_images(folder, 5, seed=3)
    units = list_units(str(folder))
    cfg = _pcfg()
    with start_run("predict", root=str(tmp_path / "runs")) as run:
        predict_ray(units, run, cfg=cfg, model_factory=ModelFactory(model_cfg), category_ids=[11, 12, 13])
    ray_dets = {d.image_id: d for d in detections_from_table(run.read_table("predictions"))}
    local, issues = predict_local(list_units(str(folder)),
                                  Predictor(ModelFactory(model_cfg), postprocess_cfg=cfg.postprocess,
                                            category_ids=[11, 12, 13]), cfg.geometry, batch_size=2)
    assert not issues and len(local) == 5
    for d in local:
        r = ray_dets[d.image_id]
        assert (r.height, r.width) == (48, 80)
        np.testing.assert_array_equal(r.labels, d.labels)
        np.testing.assert_allclose(r.boxes, d.boxes, atol=1e-3)
        np.testing.assert_allclose(r.scores, d.scores, atol=1e-5)
        assert set(r.labels.tolist()) <= {11, 12, 13}
        # boxes are in original-image coordinates (80 x 48)
        assert (r.boxes[:, [0, 2]] <= 80).all() and (r.boxes[:, [1, 3]] <= 48).all()


def test_video_frames_with_index_and_timestamp(ray_session, tmp_path, model_cfg):
    video = write_video(tmp_path / "clip.mp4", 10, fps=10.0)
    units = list_units(str(video), video_stride=2, segment_frames=4)
    assert [(u["start"], u["stop"]) for u in units] == [(0, 4), (4, 8), (8, 10)]
    with start_run("predict", root=str(tmp_path / "runs")) as run:
        s = predict_ray(units, run, cfg=_pcfg(), model_factory=ModelFactory(model_cfg))
    assert s["images"] == 5 and s["prediction_rows"] == 5
    t = run.read_table("predictions").sort_by("frame_index")
    assert t.column("frame_index").to_pylist() == [0, 2, 4, 6, 8]
    np.testing.assert_allclose(t.column("timestamp_s").to_pylist(), [0.0, 0.2, 0.4, 0.6, 0.8])
    assert t.column("height").to_pylist() == [48] * 5


def test_mask_model_over_s3_via_cli(ray_session, tmp_path, s3_bucket, capsys):
    from cvray.cli.main import main

    cfg = tiny_model_config(tmp_path, arch="maskrcnn")
    folder = tmp_path / "imgs"
    write_images(folder, 3, seed=5)
    storage.upload_tree(str(folder), f"{s3_bucket}/in")
    rc = main(["predict", "--model", cfg.weights, "--input", f"{s3_bucket}/in", "--root", f"{s3_bucket}/runs",
               "--batch-size", "2", "--json", "predict.model.arch=maskrcnn",
               "predict.model.backbone=mobilenet_v3_large_fpn", "predict.model.num_classes=3",
               "predict.model.min_size=64", "predict.model.max_size=64", "predict.model.fpn_channels=32",
               "predict.model.box_head_dim=64", "predict.model.mask_head_dim=32", "predict.model.mask_head_layers=1",
               "predict.model.rpn_pre_nms_top_n_test=100", "predict.model.rpn_post_nms_top_n_test=20",
               "predict.model.box_score_thresh=0.0", "predict.geometry.size=[64,64]",
               "predict.postprocess.score_threshold=0.0"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    out = json.loads(captured.out)
    assert out["images"] == 3 and out["prediction_rows"] == 3
    assert out["postprocess"]["nms"] == "classwise"
    table = storage.read_table_dir(f"{out['run_uri']}/tables/predictions")
    dets = detections_from_table(table)
    assert all(d.masks is not None and len(d.masks) == len(d) for d in dets)
    from pycocotools import mask as mask_utils
    m = [x for d in dets for x in d.masks]
    if m:
        assert tuple(mask_utils.decode({"size": m[0]["size"], "counts": m[0]["counts"]}).shape) == (48, 80)
    manifest = storage.read_json(f"{out['run_uri']}/manifest.json")
    assert manifest["status"] == "succeeded"
    assert manifest["summary"]["postprocess"]["score_threshold"] == 0.0


def test_coco_input_end_to_end_with_eval(ray_session, tmp_path, model_cfg, capsys):
    """COCO dataset in → predictions keyed by the dataset's image ids and category ids → cvray eval."""
    from cvray.cli.main import main
    from cvray.data.synth import make_coco
    from cvray.evaluate.coco import STAT_KEYS

    ds = make_coco(tmp_path / "data", 4, seed=2, image_size=(64, 64))
    gt_uri = ds["annotations"]["train"]
    gt = json.loads(open(gt_uri).read())
    cats = sorted(c["id"] for c in gt["categories"])
    cfg3 = model_cfg.model_copy(update={"num_classes": 3})
    units = list_units(gt_uri)
    assert sorted(u["image_id"] for u in units) == sorted(im["id"] for im in gt["images"])
    with start_run("predict", root=str(tmp_path / "runs")) as run:
        s = predict_ray(units, run, cfg=_pcfg(), model_factory=ModelFactory(cfg3), category_ids=cats[:3])
    assert s["prediction_rows"] == len(gt["images"])
    t = run.read_table("predictions")
    assert sorted(t.column("image_id").to_pylist()) == sorted(im["id"] for im in gt["images"])
    labels = {x for row in t.column("labels").to_pylist() for x in row}
    assert labels <= set(cats[:3])
    assert main(["eval", "--gt", gt_uri, "--pred", run.uri, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(STAT_KEYS) <= set(out) and out["details"]["images"] == len(gt["images"])
    assert all(-1 <= out[k] <= 1 for k in STAT_KEYS)


@pytest.mark.timeout(300)
def test_decode_runs_beside_actors_that_reserve_every_cpu(ray_session, tmp_path, model_cfg):
    """Two model actors x 1 CPU take both CPUs of the session Ray, all started at once. Decode
    tasks reserve no CPU by default, so they still run (a decode stage that needs a CPU would wait
    for ever behind the actors) and every image comes out once."""
    assert ray_session.cluster_resources()["CPU"] == 2
    folder = tmp_path / "imgs"
    write_images(folder, 8, seed=4)
    cfg = _pcfg(num_actors=2, num_cpus_per_actor=1, torch_threads=1)
    assert cfg.decode_cpus == 0
    with start_run("predict", root=str(tmp_path / "runs")) as run:
        s = predict_ray(list_units(str(folder)), run, cfg=cfg, model_factory=ModelFactory(model_cfg))
        ids = sorted(run.read_table("predictions").column("image_id").to_pylist())
    assert s["prediction_rows"] == 8 and s["actors"] == 2 and ids == list(range(1, 9))


def test_decode_stage_never_imports_torch():
    """The read/decode workers import cvray.predict.preprocess (+ sources), not torch: importing
    torch takes seconds per process and would hold back the first batch."""
    import subprocess

    code = ("import sys, cvray.predict.preprocess, cvray.predict.sources; "
            "print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
