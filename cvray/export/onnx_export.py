"""Export a torchvision detector to ONNX with the legacy (TorchScript-tracing) exporter (pure: no Ray).

``torch.onnx.export(..., dynamo=False)``: torch >= 2.9 defaults to the dynamo exporter, which fails
on torchvision's R-CNN (the data-dependent NMS / RoI paths); torchvision's detection models carry
tracing-aware code paths (``torchvision._is_tracing()``: ONNX-friendly resize, box clipping, mask
pasting) for the legacy one.

The graph: one input ``image`` (float32 ``3 x H x W`` in [0, 1], H and W dynamic -- torchvision's
R-CNN export is batch 1), outputs ``boxes`` (N x 4, xyxy in input pixels), ``labels`` (N, int64),
``scores`` (N) and, for Mask R-CNN, ``masks`` (N x 1 x H x W soft masks), N dynamic -- named, in
the order of the model's output dict (R-CNN: boxes, labels, scores, masks; RetinaNet / FCOS:
boxes, scores, labels); the backend reads them by name. The model's
own resize (``min_size`` / ``max_size``), normalisation, NMS and score threshold are inside.

Before tracing, cvray's :class:`~cvray.models.roi_align.FastMultiScaleRoIAlign` (a training-speed
backward, same forward) is swapped for torchvision's ``MultiScaleRoIAlign``, whose tracing path
(``_onnx_merge_levels``) exports; there are no parameters in it, so the weights are unchanged.
"""
from __future__ import annotations

import copy
import io
import json
import warnings
from typing import Any

import torch
from torch import nn

__all__ = ["EXPORTABLE_ARCHS", "OPSET_MIN", "UnsupportedModel", "check_exportable", "export_onnx",
           "prepare_for_export"]

#: architectures the legacy exporter handles (tests/test_export.py exports each)
EXPORTABLE_ARCHS = ("fasterrcnn", "maskrcnn", "retinanet", "fcos")
OPSET_MIN = 17


class UnsupportedModel(ValueError):
    """The model cannot be exported (its backend or architecture); the message says which."""


def check_exportable(model_cfg: Any) -> None:
    if model_cfg.backend != "torchvision":
        raise UnsupportedModel(f"model.backend={model_cfg.backend}: cvray export onnx exports torchvision "
                               "models (detectron2 has its own exporter; an .onnx model is exported already)")
    if model_cfg.arch not in EXPORTABLE_ARCHS:
        raise UnsupportedModel(f"model.arch={model_cfg.arch}: cvray export onnx exports detection / instance "
                               f"models ({', '.join(EXPORTABLE_ARCHS)})")


def prepare_for_export(model: nn.Module) -> nn.Module:
    """An eval-mode copy whose RoI poolers are torchvision's own (same outputs, exportable)."""
    from torchvision.ops import MultiScaleRoIAlign

    from cvray.models.roi_align import FastMultiScaleRoIAlign

    m = copy.deepcopy(model).eval()
    heads = getattr(m, "roi_heads", None)
    for name in ("box_roi_pool", "mask_roi_pool", "keypoint_roi_pool"):
        pool = getattr(heads, name, None) if heads is not None else None
        if isinstance(pool, FastMultiScaleRoIAlign):
            setattr(heads, name, MultiScaleRoIAlign(pool.featmap_names, pool.output_size, pool.sampling_ratio,
                                                    canonical_scale=pool.canonical_scale,
                                                    canonical_level=pool.canonical_level))
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def export_onnx(model: nn.Module, model_cfg: Any, sample: torch.Tensor, *, opset: int = OPSET_MIN,
                metadata: dict[str, Any] | None = None) -> bytes:
    """The ONNX bytes of ``model`` traced on ``sample`` (one ``3 x H x W`` float image), with the
    cvray model config (and ``metadata``) in the file's metadata."""
    import onnx

    from cvray.models.onnx_backend import INPUT_NAME, METADATA_KEY

    if opset < OPSET_MIN:
        raise UnsupportedModel(f"export.opset={opset}: opset {OPSET_MIN} or newer")
    m = prepare_for_export(model)
    with torch.no_grad():  # the traced graph's outputs are the output dict's values, in its key order
        outs = list(m([sample])[0].keys())  # R-CNN: boxes, labels, scores(, masks); RetinaNet/FCOS: boxes, scores, labels
    axes: dict[str, dict[int, str]] = {INPUT_NAME: {1: "height", 2: "width"}}
    axes.update({o: {0: "detections"} for o in outs})
    if "masks" in axes:
        axes["masks"] = {0: "detections", 2: "height", 3: "width"}
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's TracerWarnings on torchvision's shape arithmetic
        try:
            torch.onnx.export(m, ([sample],), buf, dynamo=False, opset_version=int(opset), input_names=[INPUT_NAME],
                              output_names=outs, dynamic_axes=axes, do_constant_folding=True)
        except Exception as exc:  # noqa: BLE001 - e.g. FCOS whose GroupNorm groups hold one channel each
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UnsupportedModel(f"the legacy ONNX exporter cannot trace this {model_cfg.arch} "
                                   f"({type(exc).__name__}: {first})") from exc
    proto = onnx.load_from_string(buf.getvalue())
    set_metadata(proto, {METADATA_KEY: json.dumps(model_cfg.model_dump(mode="json") | {"weights": None}),
                         **{k: (v if isinstance(v, str) else json.dumps(v)) for k, v in (metadata or {}).items()}})
    return proto.SerializeToString()


def set_metadata(proto, items: dict[str, str]) -> None:
    """Set (replace) ``metadata_props`` entries of an ONNX ``ModelProto`` in place."""
    keep = [(p.key, p.value) for p in proto.metadata_props if p.key not in items]
    del proto.metadata_props[:]
    for k, v in [*keep, *items.items()]:
        e = proto.metadata_props.add()
        e.key, e.value = k, v
