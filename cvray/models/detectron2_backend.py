"""Detectron2 backend, imported lazily: used only when ``model.backend: detectron2``.

Any model-zoo style config works (``COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml``,
``COCO-Detection/retinanet_R_50_FPN_1x.yaml``, a semantic ``SemanticSegmentor`` YAML, or a path
to your own YAML), plus ``d2_opts`` overrides in Detectron2's ``KEY VALUE`` list form.

:class:`Detectron2Model` adapts Detectron2's ``list[dict]`` protocol to cvray's (torchvision's)
``model(images, targets)`` so the same records, engine, checkpoints and metrics serve both.

Under Ray Train, Detectron2's process-global state needs care (see :func:`setup_worker`):
datasets must be registered inside each worker process (the catalog is per process), its
*local* process group must be created after Ray has initialised the global one, and the model
must be wrapped in DDP exactly once -- by ``ray.train.torch.prepare_model``, never also by
Detectron2's ``create_ddp_model``.
"""
from __future__ import annotations

import importlib.util
import logging
import os

import torch
from torch import nn

from cvray.models.config import ModelConfig
from cvray.models.weights import load_into

__all__ = ["Detectron2Backend", "Detectron2Model", "INSTALL_HINT", "register_coco_in_worker",
           "setup_worker"]

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "model.backend=detectron2 needs Detectron2, which is not installed (it is not on PyPI). "
    "Install it from source following https://detectron2.readthedocs.io/en/latest/tutorials/install.html "
    "(from its source with the torch already installed: `pip install --no-build-isolation "
    "'git+https://github.com/facebookresearch/detectron2.git'` -- without --no-build-isolation "
    "its setup.py cannot import torch; see docs/detectron2.md), or use model.backend=torchvision."
)


def _require():
    if importlib.util.find_spec("detectron2") is None:
        from cvray.models.base import BackendUnavailable

        raise BackendUnavailable(INSTALL_HINT)
    import detectron2  # noqa: F401

    return detectron2


def model_zoo_config(name: str) -> str:
    """The file of a Detectron2 model-zoo config (``COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml``).

    Found in the installed package (``detectron2/model_zoo/configs``) without importing
    ``detectron2.model_zoo``: that module imports ``pkg_resources``, which setuptools >= 81 no
    longer ships, so importing it breaks every model-zoo config on a current Python setup.
    """
    spec = importlib.util.find_spec("detectron2")
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        for base in (os.path.join(root, "model_zoo", "configs"), os.path.join(os.path.dirname(root), "configs")):
            path = os.path.join(base, name)
            if os.path.isfile(path):
                return path
    raise FileNotFoundError(f"model.d2_config={name}: neither a file nor a Detectron2 model-zoo config "
                            f"(looked under {', '.join(roots) or 'no detectron2 package'})")


def d2_opts_list(opts) -> list[str]:
    """``model.d2_opts`` as ``merge_from_list`` expects it: KEY, VALUE, ... all strings (a YAML
    number or bool becomes its literal, which Detectron2's yacs parses back with literal_eval)."""
    out = []
    for v in opts:
        if isinstance(v, bool):
            out.append("True" if v else "False")
        elif v is None:
            out.append("None")
        else:
            out.append(str(v) if not isinstance(v, (list, tuple)) else repr(list(v)))
    if len(out) % 2:
        raise ValueError(f"model.d2_opts needs KEY, VALUE pairs; got {len(out)} items: {out}")
    return out


def d2_config(cfg: ModelConfig):
    """Detectron2 ``CfgNode`` for ``cfg`` (model zoo name or YAML path, then overrides)."""
    _require()
    from detectron2.config import get_cfg

    d2 = get_cfg()
    path = cfg.d2_config if os.path.exists(cfg.d2_config) else model_zoo_config(cfg.d2_config)
    d2.merge_from_file(path)
    d2.merge_from_list(d2_opts_list(cfg.d2_opts))
    d2.MODEL.ROI_HEADS.NUM_CLASSES = cfg.num_classes
    d2.MODEL.RETINANET.NUM_CLASSES = cfg.num_classes
    d2.MODEL.SEM_SEG_HEAD.NUM_CLASSES = cfg.num_classes + 1
    d2.INPUT.MIN_SIZE_TRAIN = (cfg.min_size,)
    d2.INPUT.MIN_SIZE_TEST = cfg.min_size
    d2.INPUT.MAX_SIZE_TRAIN = cfg.max_size
    d2.INPUT.MAX_SIZE_TEST = cfg.max_size
    d2.MODEL.ROI_HEADS.SCORE_THRESH_TEST = cfg.box_score_thresh
    d2.MODEL.RETINANET.SCORE_THRESH_TEST = cfg.box_score_thresh
    d2.TEST.DETECTIONS_PER_IMAGE = cfg.detections_per_img
    d2.MODEL.WEIGHTS = ""  # cvray loads weights itself, with weights_only=True
    d2.MODEL.DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
    d2.freeze()
    return d2


class Detectron2Model(nn.Module):
    """Detectron2 meta-architecture behind ``model(images, targets)``.

    Images arrive as float RGB in [0, 1]; Detectron2 wants 0-255 in ``INPUT.FORMAT`` channel
    order and resizes internally only in its data mapper, so we resize here (shortest edge to
    ``min_size``, capped by ``max_size``) and map predictions back to the input size.
    """

    def __init__(self, d2_model: nn.Module, d2_cfg, cfg: ModelConfig):
        super().__init__()
        self.model = d2_model
        self.bgr = d2_cfg.INPUT.FORMAT == "BGR"
        self.min_size, self.max_size = cfg.min_size, cfg.max_size
        self.semantic = cfg.task == "semantic"

    def _scale(self, h: int, w: int) -> float:
        s = self.min_size / min(h, w)
        return min(s, self.max_size / max(h, w))

    def _inputs(self, images, targets):
        from detectron2.structures import BitMasks, Boxes, Instances

        out = []
        for i, im in enumerate(images):
            h, w = im.shape[-2:]
            s = self._scale(h, w)
            nh, nw = int(round(h * s)), int(round(w * s))
            x = nn.functional.interpolate(im[None], size=(nh, nw), mode="bilinear", align_corners=False)[0]
            x = (x.flip(0) if self.bgr else x) * 255.0
            d = {"image": x, "height": h, "width": w}
            if targets is not None:
                t = targets[i]
                if self.semantic:
                    d["sem_seg"] = nn.functional.interpolate(t["sem_seg"][None, None].float(), size=(nh, nw),
                                                             mode="nearest")[0, 0].long()
                else:
                    inst = Instances((nh, nw))
                    inst.gt_boxes = Boxes(t["boxes"] * s)
                    inst.gt_classes = t["labels"] - 1  # Detectron2 classes are 0-based
                    if "masks" in t:
                        m = nn.functional.interpolate(t["masks"][None].float(), size=(nh, nw), mode="nearest")[0]
                        inst.gt_masks = BitMasks(m > 0.5)
                    d["instances"] = inst
            out.append(d)
        return out

    def forward(self, images, targets=None):
        inputs = self._inputs(images, targets if self.training else None)
        if self.training:
            # Detectron2's heads log statistics (fg/bg samples ...) into the current EventStorage
            # and assert that one exists; its own trainer opens it, so the adapter does here.
            from detectron2.utils.events import EventStorage

            with EventStorage(0):
                return self.model(inputs)
        preds = []
        for r in self.model(inputs):
            if "sem_seg" in r:
                preds.append({"sem_seg": r["sem_seg"].argmax(0)})
                continue
            inst = r["instances"]
            p = {"boxes": inst.pred_boxes.tensor, "scores": inst.scores, "labels": inst.pred_classes + 1}
            if inst.has("pred_masks"):
                p["masks"] = inst.pred_masks[:, None].float()
            preds.append(p)
        return preds


class Detectron2Backend:
    name = "detectron2"
    install_hint = INSTALL_HINT

    def available(self) -> bool:
        return importlib.util.find_spec("detectron2") is not None

    def build(self, cfg: ModelConfig, *, semantic_loss: nn.Module | None = None) -> nn.Module:
        _require()
        from detectron2.modeling import build_model as d2_build

        if semantic_loss is not None:
            log.info("detectron2 semantic models use their own SEM_SEG_HEAD loss; train.loss is ignored")
        d2cfg = d2_config(cfg)
        model = Detectron2Model(d2_build(d2cfg), d2cfg, cfg)
        if cfg.weights is not None:
            # cvray's own Detectron2 checkpoints hold the wrapper's weights ("model." + name);
            # Detectron2's model_final.pth / model-zoo .pkl hold the inner model's
            load_into(model.model, cfg.weights, strict=cfg.strict_weights, strip_prefixes=("model.",))
        return model


def setup_worker(local_world_size: int) -> None:
    """Per-worker Detectron2 setup under Ray Train (call after the process group exists).

    Detectron2's ``comm`` keeps a *local* process group as a process global; Ray Train creates
    only the global group, so layers that ask for the local rank (SyncBN, some samplers) fail
    unless it is created here. Idempotent: a reused worker process keeps its group.
    """
    _require()
    import torch.distributed as dist
    from detectron2.utils import comm

    if dist.is_available() and dist.is_initialized() and getattr(comm, "_LOCAL_PROCESS_GROUP", None) is None:
        if hasattr(comm, "create_local_process_group"):
            comm.create_local_process_group(local_world_size)


def register_coco_in_worker(name: str, json_file: str, image_root: str) -> None:
    """Register a COCO dataset in *this* process's Detectron2 catalog (idempotent).

    Detectron2's ``DatasetCatalog`` is process-global, and Ray Train workers are fresh
    processes: registering in the driver does not reach them, so each worker calls this.
    """
    _require()
    from detectron2.data import DatasetCatalog
    from detectron2.data.datasets import register_coco_instances

    if name not in DatasetCatalog.list():
        register_coco_instances(name, {}, json_file, image_root)
