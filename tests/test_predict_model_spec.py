"""`cvray predict --model`: a training run folder, a checkpoint file or an architecture name."""
from __future__ import annotations

import json

import pytest
import torch

from cvray.predict.model_spec import resolve_model
from cvray.runs.errors import InputError
from cvray.models import ModelConfig, build_model


def _small(**kw) -> ModelConfig:
    return ModelConfig(arch="fasterrcnn", backbone="mobilenet_v3_large_fpn", num_classes=2, min_size=64,
                       max_size=64, fpn_channels=32, box_head_dim=64, **kw)


def test_train_run_folder_uses_its_config_and_best_checkpoint(tmp_path):
    cfg = _small()
    torch.manual_seed(1)
    model = build_model(cfg)
    run = tmp_path / "20261127-train-abc"
    (run / "checkpoints").mkdir(parents=True)
    torch.save({"model": model.state_dict(), "iteration": 10}, run / "checkpoints" / "best.pt")
    (run / "manifest.json").write_text(json.dumps({"config": {"train": {"model": cfg.model_dump(mode="json")}}}))
    got, source = resolve_model(str(run), ModelConfig(), None)
    assert got.weights == str(run / "checkpoints" / "best.pt") and got.strict_weights
    assert (got.arch, got.num_classes, got.fpn_channels) == ("fasterrcnn", 2, 32)
    rebuilt = build_model(got)  # loads strictly: the exact trained weights
    for k, v in model.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[k], v), k
    assert "best.pt" in source


def test_arch_name_and_checkpoint_file(tmp_path):
    # the class count comes from the input's categories unless predict.model.num_classes was given
    got, _ = resolve_model("retinanet:mobilenet_v3_large_fpn", ModelConfig(), num_classes=5)
    assert (got.arch, got.backbone, got.num_classes, got.weights) == ("retinanet", "mobilenet_v3_large_fpn", 5, None)
    got, _ = resolve_model("retinanet:mobilenet_v3_large_fpn", _small(), num_classes=5)
    assert got.num_classes == 2
    ckpt = tmp_path / "w.pt"
    torch.save({"model": build_model(_small()).state_dict()}, ckpt)
    got, _ = resolve_model(str(ckpt), _small(), None)
    assert got.weights == str(ckpt) and got.strict_weights and got.arch == "fasterrcnn"
    with pytest.raises(InputError, match="not found"):
        resolve_model(str(tmp_path / "missing.pt"), _small(), None)
    with pytest.raises(InputError, match="no checkpoints"):
        run = tmp_path / "r"
        run.mkdir()
        (run / "manifest.json").write_text(json.dumps({"config": {"train": {"model": _small().model_dump()}}}))
        resolve_model(str(run), ModelConfig(), None)


def test_train_run_without_num_classes_takes_its_dataset_categories(tmp_path):
    from cvray.predict.model_spec import run_categories

    cfg = _small()
    run = tmp_path / "train-run"
    (run / "checkpoints").mkdir(parents=True)
    torch.save({"model": build_model(cfg).state_dict()}, run / "checkpoints" / "latest.pt")
    ann = tmp_path / "instances_train.json"
    ann.write_text(json.dumps({"images": [], "annotations": [],
                               "categories": [{"id": 9, "name": "b"}, {"id": 4, "name": "a"}]}))
    raw = {**cfg.model_dump(mode="json"), "num_classes": None}
    (run / "manifest.json").write_text(json.dumps({"config": {"train": {"model": raw}},
                                                   "dataset": {"train": str(ann)}}))
    cats = run_categories(str(run))
    assert cats == [4, 9]
    got, source = resolve_model(str(run), ModelConfig(), len(cats))
    assert got.num_classes == 2 and "latest.pt" in source
    with pytest.raises(InputError, match="--categories"):
        resolve_model(str(run), ModelConfig(), None)
