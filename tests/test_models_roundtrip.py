"""Save/load round trip per backend: train 2 iterations -> the training run's checkpoint loaded the
way `cvray predict --model RUN` loads it (predict/model_spec.py, strict) -> the same detections as
the trained weights loaded straight into the model. Plus Detectron2's own checkpoint layouts
(`model_final.pth`, a model-zoo `.pkl` of NumPy arrays) loading into cvray's Detectron2 model."""
from __future__ import annotations

import importlib.util
import pickle

import pytest
import torch

from cvray.config import load_config
from cvray.data.synth import CocoSynthConfig, make_coco
from cvray.models import ModelConfig, build_model
from cvray.predict.model_spec import resolve_model
from cvray.runs import start_run
from cvray.train.checkpoint import CheckpointStore
from cvray.train.workflow import TrainInputs, run_train

HAS_D2 = importlib.util.find_spec("detectron2") is not None
D2_SKIP = pytest.mark.skipif(not HAS_D2, reason="Detectron2 is not installed (not on PyPI; docs/detectron2.md "
                                                "says how to run these tests in a venv that has it)")
BACKENDS = {
    "torchvision": ["train.model.backbone=mobilenet_v3_large_fpn", "train.model.fpn_channels=32",
                    "train.model.box_head_dim=64", "train.model.mask_head_dim=16", "train.model.mask_head_layers=1"],
    "detectron2": ["train.model.backend=detectron2",
                   "train.model.d2_config=COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml",
                   "train.model.d2_opts=[MODEL.RESNETS.DEPTH,18,MODEL.RESNETS.RES2_OUT_CHANNELS,64,"
                   "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE,64]"],
}
COMMON = ["train.model.arch=maskrcnn", "train.model.min_size=64", "train.model.max_size=64",
          "train.model.box_score_thresh=0.0", "train.max_iter=2", "train.batch_size=2", "train.eval_period=0",
          "train.checkpoint_period=2", "train.tensorboard=false", "train.optim.steps=[]", "train.torch_threads=1",
          "train.optim.lr=0.0005", "train.optim.clip_grad_norm=1.0"]


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rt")
    make_coco(tmp, 6, seed=3, image_size=(64, 64), config=CocoSynthConfig(categories=("circle", "rectangle")))
    return tmp / "coco"


@pytest.mark.parametrize("backend", ["torchvision", pytest.param("detectron2", marks=D2_SKIP)])
def test_a_trained_run_predicts_what_its_weights_predict(backend, coco, tmp_path):
    cfg = load_config(None, COMMON + BACKENDS[backend])
    with start_run("train", config=cfg, root=str(tmp_path), seed=0) as run:
        run_train(run, cfg.train, TrainInputs(str(coco)), ray=False)
    # the way predict / track --video / eval load a run
    model_cfg, source = resolve_model(run.uri, ModelConfig(), 2)
    assert "latest.pt" in source and model_cfg.strict_weights
    loaded = build_model(model_cfg).eval()
    # the trained weights, straight into the trained architecture
    direct_cfg = cfg.train.model.model_copy(update={"num_classes": 2})
    direct = build_model(direct_cfg)
    direct.load_state_dict(CheckpointStore.for_run(run.uri).load("latest")["model"])
    direct.eval()
    torch.manual_seed(0)
    images = [torch.rand(3, 64, 64), torch.rand(3, 48, 80)]
    with torch.no_grad():
        a, b = loaded(images), direct(images)
    for pa_, pb in zip(a, b):
        assert len(pa_["boxes"]) == len(pb["boxes"]) > 0
        for k in ("boxes", "scores", "labels"):
            assert torch.equal(pa_[k], pb[k]), k


@D2_SKIP
def test_detectron2_own_checkpoint_layouts_load(tmp_path):
    cfg = ModelConfig(backend="detectron2", arch="maskrcnn",
                      d2_config="COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml",
                      d2_opts=("MODEL.RESNETS.DEPTH", 18, "MODEL.RESNETS.RES2_OUT_CHANNELS", 64),
                      num_classes=2, min_size=64, max_size=64)
    torch.manual_seed(1)
    ref = build_model(cfg).eval()
    inner = ref.model.state_dict()
    pth = tmp_path / "model_final.pth"  # what DetectionCheckpointer.save writes
    torch.save({"model": inner, "iteration": 89999}, pth)
    pkl = tmp_path / "model_final_abc.pkl"  # the model zoo: a pickle of NumPy arrays
    with open(pkl, "wb") as f:
        pickle.dump({"model": {k: v.numpy() for k, v in inner.items()}, "__author__": "Detectron2 Model Zoo"}, f)
    image = [torch.rand(3, 64, 64)]
    with torch.no_grad():
        want = ref(image)[0]
        for src in (pth, pkl):
            got = build_model(cfg.model_copy(update={"weights": str(src), "strict_weights": True})).eval()(image)[0]
            assert torch.equal(got["boxes"], want["boxes"]) and torch.equal(got["scores"], want["scores"]), src


def test_pickled_numpy_weights_load_safely_and_nothing_else_does(tmp_path):
    """A .pkl weights file may hold NumPy arrays; any other object is refused (weights_only)."""
    from cvray.models.weights import WeightsError, read_state_dict

    good = tmp_path / "w.pkl"
    with open(good, "wb") as f:
        pickle.dump({"model": {"a.weight": torch.ones(2, 3).numpy()}}, f)
    sd = read_state_dict(str(good))
    assert torch.equal(sd["a.weight"], torch.ones(2, 3))

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "evil.pkl"
    with open(bad, "wb") as f:
        pickle.dump({"model": {"a": Evil()}}, f)
    with pytest.raises(WeightsError, match="cannot load weights"):
        read_state_dict(str(bad))


def test_d2_opts_take_any_yaml_scalar():
    from cvray.models.detectron2_backend import d2_opts_list

    cfg = load_config(None, ["train.model.d2_opts=[MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE,64,SOLVER.BASE_LR,0.02,"
                             "MODEL.MASK_ON,true]"])
    assert d2_opts_list(cfg.train.model.d2_opts) == ["MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "64",
                                                     "SOLVER.BASE_LR", "0.02", "MODEL.MASK_ON", "True"]
    with pytest.raises(ValueError, match="KEY, VALUE pairs"):
        d2_opts_list(["MODEL.MASK_ON"])
