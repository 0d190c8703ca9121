"""The train tables have declared schemas (cvray.train.outputs): fixed columns plus the declared
rule for the wide ones (loss parts of train_curves, metrics of eval_metrics); a short plain run
writes every one of them with its name and version, and readers see the same rows as before."""
from __future__ import annotations

import pyarrow as pa
import pytest

from cvray.config import load_config
from cvray.data.synth import CocoSynthConfig, make_coco
from cvray.runs import start_run
from cvray.runs.tables import RUN_TABLES, declared_schema, table_identity
from cvray.train.outputs import (CURVE_COLUMNS, EVAL_METRICS_SCHEMA, TRAIN_CURVES_SCHEMA, curves_table,
                                 eval_metrics_schema, eval_table, train_curves_schema, worker_seeds_table)
from cvray.train.workflow import TrainInputs, run_train

TRAIN_TABLES = ("train_curves", "eval_metrics", "per_class_ap", "per_class_iou", "worker_seeds")


VERSIONS = {"train_curves": "2"}  # v2: the step guard's "skipped" column


def test_train_tables_are_catalogued_with_their_versions():
    for name in TRAIN_TABLES:
        assert RUN_TABLES[name].startswith("cvray.train.outputs:"), name
        assert table_identity(declared_schema(name)) == (name, VERSIONS.get(name, "1"))


def test_wide_schemas_add_their_columns_by_rule():
    s = train_curves_schema(["loss_classifier", "loss_mask"])
    assert table_identity(s) == ("train_curves", "2")
    assert s.names == ["iteration", "loss", "loss_classifier", "loss_mask", *CURVE_COLUMNS[1:]]
    assert all(s.field(n).type == pa.float64() for n in s.names[1:])
    assert train_curves_schema().names == TRAIN_CURVES_SCHEMA.names
    with pytest.raises(ValueError, match="fixed column"):
        train_curves_schema(["lr"])
    e = eval_metrics_schema(["bbox_AP", "segm_AP50", "eval_time"])
    assert e.names == ["iteration", "bbox_AP", "segm_AP50", "eval_time"] and table_identity(e)[0] == "eval_metrics"
    assert eval_metrics_schema(["mIoU", "mDice", "pixel_acc"]).names[1:4] == ["mIoU", "mDice", "pixel_acc"]
    assert eval_metrics_schema().names == EVAL_METRICS_SCHEMA.names
    with pytest.raises(ValueError, match="not declared metric"):
        eval_metrics_schema(["accuracy"])
    with pytest.raises(ValueError, match="not declared metric"):
        eval_table([{"iteration": 1, "bbox_AP": 0.1, "note": "x"}])


def test_tables_keep_the_rows_readers_see():
    rows = [{"iteration": 1, "loss": 2.0, "classification": 1.5, "bbox_regression": 0.5, "lr": 0.1,
             "grad_norm": 3.0, "images": 2, "positives": 3, "data_time": 0.01, "time": 0.2, "images_per_s": 10.0}]
    t = curves_table(rows)
    # a row from before the step guard (a resumed v1 run) has no "skipped": null there
    assert t.to_pylist() == [{**{k: float(v) if k != "iteration" else v for k, v in rows[0].items()},
                              "skipped": None}]
    assert t.schema.field("iteration").type == pa.int64()
    h = eval_table([{"iteration": 2, "bbox_AP": 0.0, "eval_time": 1.0},
                    {"iteration": 4, "bbox_AP": 0.2, "bbox_AR1": 0.3, "eval_time": 1.0}]).to_pylist()
    assert h[0]["bbox_AR1"] is None and h[1]["bbox_AR1"] == 0.3
    seeds = worker_seeds_table(7, [11, 12])
    assert seeds.to_pylist() == [{"rank": 0, "seed": 11, "base_seed": 7}, {"rank": 1, "seed": 12, "base_seed": 7}]
    assert table_identity(seeds.schema) == ("worker_seeds", "1")


def test_a_plain_run_writes_declared_train_tables(tmp_path):
    info = make_coco(tmp_path / "d", n_images=8, seed=2, image_size=(64, 64),
                     config=CocoSynthConfig(categories=("circle", "rectangle"), crowd_prob=0.0))
    cfg = load_config(None, [
        "train.model.backbone=mobilenet_v3_large_fpn", "train.model.norm=gn", "train.model.min_size=64",
        "train.model.max_size=64", "train.model.fpn_channels=32", "train.model.box_head_dim=64",
        "train.model.mask_head_dim=16", "train.model.mask_head_layers=1", "train.model.anchor_sizes=[16,32,64]",
        "train.batch_size=2", "train.max_iter=2", "train.eval_period=1", "train.checkpoint_period=2",
        "train.tensorboard=false", "train.max_val_images=2", "train.torch_threads=1",
        "train.val_split=train"])  # 8 images leave val empty: evaluate on train
    with start_run("train", config=cfg, root=str(tmp_path / "runs"), seed=0) as run:
        run_train(run, cfg.train, TrainInputs(info["root"]), ray=False)
    for name in ("train_curves", "eval_metrics", "per_class_ap"):
        table = run.read_table(name)
        assert table_identity(table.schema) == (name, VERSIONS.get(name, "1")), name
        assert set(declared_schema(name).names) <= set(table.schema.names), name
    curves = run.read_table("train_curves")
    parts = [n for n in curves.schema.names if n not in TRAIN_CURVES_SCHEMA.names]
    assert parts == ["loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"]
    evals = run.read_table("eval_metrics")
    assert {"bbox_AP", "segm_AP"} <= set(evals.schema.names)
    assert run.read_table("per_class_ap").schema.field("category_id").type == pa.int64()
