"""The predict stage's workflow: ``prepare_predict`` (resolve what the user named) then
``run_predict`` (read → model actors → write, on Ray Data).

Example::

    inputs = prepare_predict(cfg.predict, input="./synth/coco/images", model="./cvray-runs/<train run>")
    with run_context("predict", cfg, ray=True, dataset=lambda: predict_fingerprint(inputs)) as run:
        summary = run_predict(run, cfg.predict, inputs)

``prepare_predict`` raises :class:`~cvray.runs.errors.InputError` (the CLI: one line, exit 2)
before any run exists when the model, the categories or the input cannot be used.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from cvray.io import storage
from cvray.predict.config import PredictConfig
from cvray.predict.model_spec import require_num_classes, resolve_model, run_categories
from cvray.runs.errors import InputError

__all__ = ["PredictInputs", "drift_reference", "drift_stream", "predict_fingerprint", "prepare_predict", "resolve_categories",
           "resolve_model_and_categories", "run_predict"]


@dataclass(frozen=True)
class PredictInputs:
    input: str                         # image folder, COCO JSON, video or video folder
    model: Any                         # the resolved ModelConfig
    model_source: str                  # what --model named, in words
    category_ids: list[int] | None     # model label k -> category_ids[k-1]
    categories_source: str | None
    units: list[dict] = field(default_factory=list, repr=False)  # units of work (cvray.predict.sources)
    calibrator: dict | None = field(default=None, repr=False)  # predict.calibrator's calibrator.json
    policy: dict | None = field(default=None, repr=False)      # predict.policy's policy.json
    drift_reference: dict | None = field(default=None, repr=False)  # predict.drift.reference's windows


def resolve_categories(categories: str | None, input_uri: str | None, model: str) -> tuple[list[int] | None, str | None]:
    """Sorted category ids for the model's labels: ``categories`` (a COCO JSON), else the input's
    own COCO JSON, else the dataset a training run was trained on."""
    from cvray.data.coco import DatasetError, load_coco

    uri = categories or (input_uri if input_uri and input_uri.lower().endswith(".json") else None)
    if uri:
        try:
            return sorted(int(c["id"]) for c in load_coco(uri)["categories"]), uri
        except (DatasetError, storage.StorageError, KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{uri}: cannot read its categories ({exc})") from exc
    ids = run_categories(model)
    return ids, (f"{model} (training dataset)" if ids else None)


def resolve_model_and_categories(model: str, model_section: Any, *, categories: str | None = None,
                                 input_uri: str | None = None) -> tuple[Any, str, list[int] | None]:
    """(ModelConfig, source, category ids) for ``--model``, as ``cvray predict`` resolves them; a
    model whose class count cannot be known, or a bad spec, is an InputError naming it."""
    from cvray.predict.model_spec import ModelSpecError

    try:
        category_ids, _ = resolve_categories(categories, input_uri, model)
        model_cfg, source = resolve_model(model, model_section, len(category_ids) if category_ids else None)
        require_num_classes(model_cfg, model)
    except ModelSpecError as exc:
        raise InputError(str(exc)) from None
    return model_cfg, source, category_ids


def prepare_predict(section: PredictConfig, *, input: str, model: str, images_root: str | None = None,
                    categories: str | None = None) -> PredictInputs:
    """Resolve ``--model``, the category map and the units of work of ``--input``."""
    from cvray.predict.sources import list_units

    category_ids, cats_source = resolve_categories(categories, input, model)
    model_cfg, source = resolve_model(model, section.model, len(category_ids) if category_ids else None)
    require_num_classes(model_cfg, model)
    if model_cfg.task == "semantic":
        raise InputError(f"{model}: cvray predict runs detection / instance models; semantic models are "
                         "evaluated with cvray.evaluate.semantic")
    if not storage.exists(input):
        raise InputError(f"{input}: no such file or folder")
    units = list_units(input, images_root=images_root, video_stride=section.video_stride)
    return PredictInputs(input=input, model=model_cfg, model_source=source, category_ids=category_ids,
                         categories_source=cats_source, units=units,
                         calibrator=(calibrator := _calibrator(section.calibrator, category_ids, model)),
                         policy=_policy(section.policy, category_ids, model, calibrator),
                         drift_reference=drift_reference(section.drift))


def _policy(spec: str | None, category_ids: list[int] | None, model: str, calibrator: dict | None) -> dict | None:
    """``predict.policy``'s record; its classes must be the model's and its score kind the one
    written (raw, or this calibrator's), else its thresholds mean nothing."""
    if not spec:
        return None
    from cvray.calibrate.decision import check_score_kind, read_policy

    try:
        rec = read_policy(spec)
        check_score_kind(rec, calibrator)
    except ValueError as exc:
        raise InputError(f"predict.policy: {exc}") from None
    return _for_model(rec, "predict.policy", spec, category_ids, model)


def _calibrator(spec: str | None, category_ids: list[int] | None, model: str) -> dict | None:
    """``predict.calibrator``'s record; its classes must be the model's (else its scores mean nothing)."""
    if not spec:
        return None
    from cvray.calibrate.policy import read_calibrator

    try:
        rec = read_calibrator(spec)
    except ValueError as exc:
        raise InputError(f"predict.calibrator: {exc}") from None
    return _for_model(rec, "predict.calibrator", spec, category_ids, model)


def _for_model(rec: dict, key: str, spec: str, category_ids: list[int] | None, model: str) -> dict:
    """``rec`` when it was made for the model's classes (else its numbers mean nothing)."""
    if category_ids is not None and rec.get("category_ids") and list(rec["category_ids"]) != list(category_ids):
        raise InputError(f"{key} {spec}: made for category ids {rec['category_ids']}, the model "
                         f"{model} predicts {category_ids}")
    return rec


def drift_reference(section: Any) -> dict | None:
    """``drift.reference``'s windows per source (None when not given); a bad reference is an
    InputError naming it (raised before any run exists)."""
    if not section.reference:
        return None
    from cvray.drift.stream import read_reference

    try:
        return read_reference(section.reference)
    except ValueError as exc:
        raise InputError(f"--drift-reference: {exc}") from None


def drift_stream(section: Any, units: list[dict], reference: dict | None = None):
    """The run's :class:`~cvray.drift.stream.DriftStream` when drift is on (``--drift`` /
    ``--drift-reference``), else None; video sources get their fps over the stride."""
    if not section.active:
        return None
    from cvray.drift.stream import DriftStream

    fps = {str(u["file_name"]): float(u["fps"]) / max(int(u.get("stride", 1)) or 1, 1)
           for u in units if u.get("kind") == "video" and u.get("fps")}
    return DriftStream(section, reference, fps)


def predict_fingerprint(inputs: PredictInputs) -> dict[str, Any]:
    """The manifest's ``dataset``: a COCO input's annotations + image list, else the files read."""
    from cvray.data.fingerprint import coco_fingerprint, files_fingerprint

    fp = (coco_fingerprint({"input": inputs.input}) if inputs.input.lower().endswith(".json")
          else files_fingerprint({"input": inputs.input}))
    return {**fp, "input": inputs.input, "categories": inputs.categories_source}


def run_predict(run: Any, section: PredictConfig, inputs: PredictInputs, *, ray: bool = True,
                on_progress: Callable[..., None] | None = None) -> dict[str, Any]:
    """Predict every unit on Ray Data and write the ``predictions`` / ``issues`` tables.

    ``on_progress(done, total, **info)`` is called as images/frames come back (``img_s=``)."""
    if not ray:
        raise ValueError("predict runs on Ray Data; there is no in-process path (use "
                         "cvray.predict.engine.Predictor directly)")
    from cvray.predict.distributed import predict_ray
    from cvray.predict.engine import ModelFactory

    run.update(model={"source": inputs.model_source, "config": inputs.model.model_dump(mode="json")})
    cb = None
    if on_progress is not None:
        def cb(done: int, total: int, ips: float) -> None:
            on_progress(done, total, img_s=round(ips, 2))
    stream = drift_stream(section.drift, inputs.units, inputs.drift_reference)
    summary = predict_ray([dict(u) for u in inputs.units], run, cfg=section,
                          model_factory=ModelFactory(inputs.model), category_ids=inputs.category_ids,
                          calibrator=inputs.calibrator, policy=inputs.policy, drift=stream, on_progress=cb)
    if stream is not None:
        from cvray.drift.stream import write_drift

        summary["drift"] = write_drift(run, stream, section.drift)
    if inputs.calibrator is not None:  # which scores the predictions hold (raw ones are not kept)
        from cvray.calibrate.policy import ScoreCalibration

        summary["scores"] = ScoreCalibration(inputs.calibrator).describe()
        run.update(scores=summary["scores"])
    if inputs.policy is not None:  # which thresholds tagged the decision column
        from cvray.calibrate.decision import DecisionPolicy

        summary["policy"] = DecisionPolicy(inputs.policy).describe()
        run.update(policy=summary["policy"])
    run.summary.update(summary)
    return summary
