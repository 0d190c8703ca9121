"""INT8 post-training static quantization of an exported detector (onnxruntime; pure, no Ray).

``onnxruntime.quantization.quantize_static`` in the QDQ format (QuantizeLinear / DequantizeLinear
pairs around the quantized ops; onnxruntime fuses them into integer kernels), with

* ``op_types_to_quantize = Conv, MatMul, Gemm``: only the backbone / FPN / head convolutions and
  the box head's fully connected layers become INT8 (weights per channel, signed; activations
  unsigned, per tensor). Every other op stays float -- in particular NMS (``NonMaxSuppression``),
  ``RoiAlign``, TopK, the anchor arithmetic and the box decoding (``Exp`` / ``Mul`` / ``Add`` of
  the deltas onto the anchors / proposals), the mask head's ``ConvTranspose`` and the mask paste;
* ``nodes_to_exclude``: the prediction layers whose outputs are decoded or thresholded -- every
  Conv / Gemm whose node name contains one of :data:`DEFAULT_EXCLUDE` (RPN objectness and box
  deltas, the R-CNN box predictor's class logits and box deltas, the mask logits, RetinaNet / FCOS
  classification logits, box regression and centerness). Their inputs stay float too, so the box
  deltas and scores are computed from float weights; :func:`quantized_summary` lists what was and
  was not quantized, and ``export.int8_exclude`` adds patterns;
* a calibration set drawn from typical and edge conditions (:func:`calibration_images`): the
  calibration images clean, plus each under ``export.calibration_corruptions`` (the robustness
  suite's corruptions, :mod:`cvray.robustness.corruptions`, used read-only) at
  ``export.calibration_severities`` -- so the activation ranges cover noise, blur, fog, contrast and
  JPEG artefacts, not only clean frames;
* ``quant_pre_process`` (ONNX shape inference + onnxruntime graph optimisation) first, as
  onnxruntime recommends, without its symbolic shape inference (it cannot follow the R-CNN graph);
  when the pre-processing fails the float model is quantized as exported (``pre_process`` says which).
"""
from __future__ import annotations

import logging
import os
import tempfile
from typing import Any, Iterator

import numpy as np

__all__ = ["DEFAULT_EXCLUDE", "QUANTIZED_OPS", "ImageReader", "calibration_images", "excluded_nodes",
           "quantize_int8", "quantized_summary"]

log = logging.getLogger(__name__)

QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")
#: name fragments of the prediction layers kept float (legacy-exporter node names follow the modules)
DEFAULT_EXCLUDE = (
    "/rpn/head/cls_logits", "/rpn/head/bbox_pred",                       # RPN objectness + deltas
    "/roi_heads/box_predictor/",                                        # R-CNN class logits + deltas
    "/roi_heads/mask_predictor/mask_fcn_logits",                        # mask logits
    "/head/classification_head/cls_logits",                             # RetinaNet / FCOS logits
    "/head/regression_head/bbox_reg", "/head/regression_head/bbox_ctrness",  # their deltas, centerness
)


def calibration_images(images: list[np.ndarray], *, corruptions: list[str], severities: list[int], seed: int,
                       image_ids: list[int] | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """(condition, uint8 HxWx3) pairs: every image clean, then under each corruption x severity."""
    from cvray.robustness.corruptions import corrupt, corruption_rng

    ids = image_ids or list(range(len(images)))
    for im in images:
        yield "clean", im
    for name in corruptions:
        for s in severities:
            for iid, im in zip(ids, images):
                yield f"{name}/{s}", corrupt(im, name, int(s), corruption_rng(seed, int(iid), name, int(s)))


class ImageReader:
    """An onnxruntime ``CalibrationDataReader`` over uint8 HxWx3 images (fed as ``3 x H x W`` floats
    in [0, 1], as the backend feeds them)."""

    def __init__(self, images: list[np.ndarray], input_name: str = "image"):
        self.images, self.input_name, self._k = images, input_name, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._k >= len(self.images):
            return None
        im = self.images[self._k]
        self._k += 1
        return {self.input_name: np.ascontiguousarray(im.transpose(2, 0, 1), np.float32) / 255.0}

    def rewind(self) -> None:
        self._k = 0

    def __len__(self) -> int:
        return len(self.images)


def excluded_nodes(model_proto, patterns: tuple[str, ...] | list[str]) -> list[str]:
    """Names of the quantizable nodes (Conv / MatMul / Gemm) that match an exclusion pattern."""
    return [n.name for n in model_proto.graph.node
            if n.op_type in QUANTIZED_OPS and any(p in n.name for p in patterns)]


def _op_types(graph) -> list[str]:
    """Op types of a graph and of its subgraphs (If / Loop bodies: NMS sits in an If branch)."""
    out = []
    for n in graph.node:
        out.append(n.op_type)
        for a in n.attribute:
            for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                out.extend(_op_types(g))
    return out


def quantized_summary(fp32_proto, int8_proto) -> dict[str, Any]:
    """What became INT8: quantizable nodes quantized / kept float (by name), Q/DQ node counts, and
    the float ops of the INT8 graph that matter (NMS, RoiAlign, TopK, Exp of the box decoding)."""
    ops = _op_types(int8_proto.graph)
    dq_out = {o for n in int8_proto.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    quantized, kept = [], []
    for n in int8_proto.graph.node:
        if n.op_type in QUANTIZED_OPS:
            (quantized if any(i in dq_out for i in n.input[:1]) else kept).append(n.name)
    return {"quantized_nodes": len(quantized), "float_nodes": sorted(kept),
            "quantize_linear": ops.count("QuantizeLinear"), "dequantize_linear": ops.count("DequantizeLinear"),
            "float_ops": sorted({o for o in ops if o in ("NonMaxSuppression", "RoiAlign", "TopK", "Exp",
                                                          "ConvTranspose", "Resize")}),
            "fp32_nodes": len(fp32_proto.graph.node), "int8_nodes": len(int8_proto.graph.node)}


def quantize_int8(fp32: bytes, images: list[np.ndarray], *, exclude: tuple[str, ...] | list[str] = DEFAULT_EXCLUDE,
                  method: str = "minmax", per_channel: bool = True, preprocess: bool = True) -> tuple[bytes, dict]:
    """(INT8 QDQ model bytes, what was done) from the float model and the calibration images."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    info: dict[str, Any] = {"format": "QDQ", "method": method, "per_channel": per_channel,
                            "op_types": list(QUANTIZED_OPS), "activation_type": "QUInt8", "weight_type": "QInt8",
                            "calibration_images": len(images)}
    with tempfile.TemporaryDirectory() as tmp:
        src, pre, out = (os.path.join(tmp, f) for f in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        with open(src, "wb") as f:
            f.write(fp32)
        info["pre_process"] = "none"
        if preprocess:
            from onnxruntime.quantization.shape_inference import quant_pre_process

            try:  # ONNX shape inference + onnxruntime's graph optimisation; the symbolic shape
                # inference is skipped: on torchvision's R-CNN (Loop / If / NMS) it ran 205 s and
                # gave up ("Incomplete symbolic shape inference"), measured on the demo model
                quant_pre_process(src, pre, skip_symbolic_shape=True, skip_optimization=False)
                info["pre_process"] = "shape_inference+optimization"
                src = pre
            except Exception as exc:  # noqa: BLE001 - the float graph as exported is quantized instead
                log.warning("quant_pre_process failed, quantizing the graph as exported: %s", exc)
        model = onnx.load(src)
        excl = excluded_nodes(model, tuple(exclude))
        info["excluded_nodes"] = excl
        quantize_static(src, out, ImageReader(images), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=list(QUANTIZED_OPS), nodes_to_exclude=excl, per_channel=per_channel,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=methods[method], extra_options={"CalibMovingAverage": False})
        q = onnx.load(out)
        # The shape annotations ONNX shape inference left in the graph pin some post-processing
        # tensors to the size they had while tracing (RetinaNet: a 0 x 2 x 2 box slice), and
        # onnxruntime then refuses every image ("cannot reshape ... {0,-1}"); without them it infers
        # the shapes per run, as it does for the exported float graph.
        del q.graph.value_info[:]
        info.update(quantized_summary(model, q))
        from cvray.export.onnx_export import set_metadata

        set_metadata(q, {p.key: p.value for p in onnx.load_from_string(fp32).metadata_props})
        return q.SerializeToString(), info
