"""The validate stage's workflows: ``run_validate`` (rules, leakage, baselines: Ray Data or in
process) and the dataset tools ``run_card``, ``run_split``, ``run_convert`` (``cvray data card /
split / convert``). ``load_annotation_docs`` reads what the user named (:class:`InputError` when a
file cannot be used, before any run exists).

Tables written to the run: ``issues`` (the runs issues schema), ``leakage_pairs``
(:data:`cvray.validate.leakage.PAIR_SCHEMA`), ``images`` (per-image format/mode/size/pHash/sha,
Ray mode) and ``baselines`` (bbox COCO stats of the sanity baselines).
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from cvray.io import storage
from cvray.runs import Run
from cvray.runs.errors import InputError
from cvray.runs.issues import issue
from cvray.validate.baselines import run_baselines
from cvray.validate.config import ValidateConfig
from cvray.validate.leakage import pairs_to_table
from cvray.validate.reference import ValidationResult, annotation_splits, validate_local
from cvray.validate.tables import baselines_to_table

__all__ = ["CardInputs", "ConvertInputs", "SplitInputs", "ValidateInputs", "load_annotation_docs",
           "run_card", "run_convert", "run_split", "run_validate"]

log = logging.getLogger(__name__)


def _baselines(annotation_uris: dict[str, str], cfg: ValidateConfig) -> tuple[list[dict], list]:
    """Baselines fitted on ``train`` and scored on every other split (when both parse)."""
    import json

    if "train" not in annotation_uris:
        return [], []
    try:
        docs = {s: json.loads(storage.read_bytes(u)) for s, u in annotation_uris.items()}
    except (ValueError, storage.StorageError) as exc:
        log.info("baselines skipped: %s", exc)
        return [], []
    rows, issues = [], []
    for split, doc in docs.items():
        if split == "train":
            continue
        try:
            r, i = run_baselines(docs["train"], doc, cfg, split=split)
        except Exception as exc:  # a split the evaluator rejects is already a schema issue
            log.info("baselines on %s skipped: %s", split, exc)
            continue
        rows += r
        issues += i
    return rows, issues


@dataclass(frozen=True)
class ValidateInputs:
    annotations: tuple[str, ...]  # COCO files; instances_<split>.json names the split
    images: str                   # images root (file_name is relative to it)
    baselines: bool = True        # score the sanity baselines


def run_validate(run: Run | None, section: ValidateConfig, inputs: ValidateInputs, *, ray: bool = True,
                 on_progress=None) -> tuple[ValidationResult, dict[str, Any]]:
    """Validate (Ray Data when ``ray``, else in process), score the baselines and (with a run)
    write every table; return the result and the summary. ``section`` is ``validation``."""
    cfg, images_root, use_ray, baselines = section, inputs.images, ray, inputs.baselines
    uris = annotation_splits(list(inputs.annotations))
    images_ds = None
    if use_ray:
        from cvray.validate.distributed import validate_ray

        result, images_ds = validate_ray(uris, images_root, cfg, on_progress=on_progress)
    else:
        result = validate_local(uris, images_root, cfg, on_progress=on_progress)
    rows, b_issues = _baselines(uris, cfg) if baselines else ([], [])
    result.issues.extend(b_issues)
    summary = result.summary(cfg)
    summary["baselines"] = {f"{r['baseline']}@{r['split']}": round(r["AP"], 4) for r in rows}
    if run is not None:
        run.add_issues(result.issues)
        run.write_table("leakage_pairs", pairs_to_table(result.pairs))
        if rows:
            run.write_table("baselines", baselines_to_table(rows))
        if images_ds is not None:
            from cvray.validate.distributed import image_tables

            for k, table in enumerate(image_tables(images_ds)):
                run.write_table("images", table, part=f"part-{k:05d}")
        run.flush_issues()
        run.summary.update(summary)
    return result, summary


# -- dataset tools: card, split, convert ---------------------------------------------------------


def load_annotation_docs(files: list[str]) -> dict[str, dict]:
    """split -> COCO dict of ``instances_<split>.json`` files; :class:`InputError` names a bad one."""
    from cvray.data.coco import DatasetError, load_coco

    try:
        splits = annotation_splits(files)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    docs = {}
    for split, uri in splits.items():
        if not storage.exists(uri):
            raise InputError(f"{uri}: no such annotation file")
        try:
            docs[split] = load_coco(uri)
        except DatasetError as exc:
            raise InputError(str(exc)) from exc
    return docs


@dataclass(frozen=True)
class CardInputs:
    annotations: tuple[str, ...]
    images: str
    out: str                           # card.md, card.json, overlays/<split>.png
    name: str = "dataset"
    sources: tuple[str, ...] = ()
    split_strategy: str = "as given"
    artifacts: tuple[str, ...] = ()
    validate: bool = True              # include the validation / leakage summary


def run_card(run: Run, section: ValidateConfig, inputs: CardInputs, *, seed: int = 0) -> dict[str, Any]:
    """Write the dataset card (Markdown + JSON) and an overlay grid per split."""
    from cvray.validate.card import card_markdown, dataset_card, overlay_grid

    files = list(inputs.annotations)
    docs = load_annotation_docs(files)
    validation, leakage, rows = {}, {}, []
    if inputs.validate:
        s = validate_local(files, inputs.images, section).summary(section)
        validation = {"issues": s["issues"], "rules": s["rules"], "passed": s["passed"]}
        leakage = {"cross_split_pairs": s["leak_pairs_cross_split"],
                   "within_split_duplicate_pairs": s["duplicate_pairs_within_split"],
                   "group_leaks": s["rules"].get("leak.group", 0),
                   "phash_threshold": section.phash_threshold}
    if "train" in docs:
        for split, doc in docs.items():
            if split != "train" and doc["annotations"]:
                rows += run_baselines(docs["train"], doc, section, split=split)[0]
    card = dataset_card(docs, name=inputs.name, sources=list(inputs.sources),
                        split_strategy=inputs.split_strategy, validation=validation, leakage=leakage,
                        known_artifacts=list(inputs.artifacts), baselines=rows)
    md = card_markdown(card)
    storage.write_bytes(storage.join(inputs.out, "card.md"), md.encode())
    storage.write_json(storage.join(inputs.out, "card.json"), card)
    run.write_artifact("card.md", md.encode())
    overlays = {}
    for split, doc in docs.items():
        png = overlay_grid(doc, inputs.images, seed=seed)
        uri = storage.join(inputs.out, "overlays", f"{split}.png")
        storage.write_bytes(uri, png)
        run.write_artifact(f"overlays/{split}.png", png)
        overlays[split] = uri
    run.summary.update({"card": storage.join(inputs.out, "card.md"), "splits": list(docs)})
    return {"card_md": storage.join(inputs.out, "card.md"), "card_json": storage.join(inputs.out, "card.json"),
            "overlays": overlays, "splits": {k: v["images"] for k, v in card["splits"].items()}}


_DROP_BOX = ("box.non_finite", "box.non_positive", "schema.wrong_type")  # boxes no format can hold


def screen_coco(doc: dict, file: str, section: ValidateConfig, stage: str) -> tuple[dict, list]:
    """``doc`` with only the records the validation rules find sound, and the issue rows of the
    ones left out (one per record, its first reason, ending "(<kind> skipped)").

    Dropped: images / categories / annotations that fail the schema rules (missing or mistyped
    keys, duplicate ids: the first occurrence stays, dangling image / category references) and
    annotations whose box is NaN/inf or of non-positive size. Other findings (out of bounds,
    tiny ...) stay in the data: ``cvray validate`` reports them.
    """
    from dataclasses import replace as _replace

    from cvray.validate.annotations import validate_annotations
    from cvray.validate.boxes import check_box

    report = validate_annotations(doc, file, section)
    idx = report.index
    errors = [i for i in report.issues if i.severity == "error"]
    rows = []

    def drop(found, what: str) -> None:
        rows.append(_replace(found, stage=stage, message=f"{found.message} ({what} skipped)"))

    def first(pred, default_msg: str, **kw):
        for i in errors:
            if pred(i):
                return i
        return issue(stage, "schema.wrong_type", default_msg, file=file, **kw)

    kept_images = {id(v) for v in idx.images.values()}
    images = []
    for k, img in enumerate(doc["images"]):
        if id(img) in kept_images:
            images.append(img)
            continue
        iid = img.get("id") if isinstance(img, dict) else None
        drop(first(lambda i: i.image_id == iid and i.annotation_id is None and "image" in i.message,
                   f"{file}: image #{k} is not a valid image record", image_id=iid), "image")
    kept_cats = {id(v) for v in idx.categories.values()}
    categories = [c for c in doc["categories"] if id(c) in kept_cats]
    for k, c in enumerate(doc["categories"]):
        if id(c) not in kept_cats:
            drop(first(lambda i: "category" in i.message and i.annotation_id is None and i.image_id is None,
                       f"{file}: category #{k} is not a valid category record"), "category")
    sound = {id(a) for a in idx.annotations}
    annotations, seen = [], set()
    for k, ann in enumerate(doc["annotations"]):
        aid = ann.get("id") if isinstance(ann, dict) else None
        if id(ann) not in sound:
            dup = aid in seen
            drop(first(lambda i: i.annotation_id == aid and (i.rule == "schema.duplicate_id") == dup,
                       f"{file}: annotation #{k} is not a valid annotation record", annotation_id=aid),
                 "annotation")
            continue
        seen.add(aid)
        bad = [i for i in check_box(ann, idx.images[ann["image_id"]], file, section) if i.rule in _DROP_BOX]
        if bad:
            drop(bad[0], "annotation")
            continue
        annotations.append(ann)
    clean = {**doc, "images": images, "annotations": annotations, "categories": categories}
    return clean, rows


def _skip_summary(rows: list) -> dict[str, Any]:
    """``skipped`` (records by kind) and ``skipped_reasons`` (records by rule) of skip rows."""
    kinds = Counter(r.message.rsplit("(", 1)[-1].split()[0] + "s" for r in rows)
    return {"skipped": {k: kinds.get(k, 0) for k in ("images", "annotations", "categories")},
            "skipped_reasons": dict(sorted(Counter(r.rule for r in rows).items()))}


@dataclass(frozen=True)
class SplitInputs:
    annotations: tuple[str, ...]
    out: str                           # instances_<split>.json
    fractions: tuple[tuple[str, float], ...]
    group_keys: tuple[str, ...] = ()   # default: validation.group_keys
    seed: int = 0


def parse_fractions(text: str) -> tuple[tuple[str, float], ...]:
    """``train=0.7,val=0.15,test=0.15`` -> pairs; :class:`InputError` when malformed."""
    out = {}
    for part in text.split(","):
        name, _, val = part.partition("=")
        try:
            out[name.strip()] = float(val)
        except ValueError:
            raise InputError(f"--fractions: {part!r} is not split=fraction") from None
    if not out or any(v < 0 for v in out.values()) or sum(out.values()) <= 0:
        raise InputError(f"--fractions: {text!r} must be non-negative and sum > 0")
    return tuple(out.items())


def run_split(run: Run, section: ValidateConfig, inputs: SplitInputs) -> dict[str, Any]:
    """Re-split so that whole groups go to one split (leak-free by construction, checked).

    The validation rules run first: records they find unusable are left out, each an issue row,
    counted by reason in the summary (``skipped``, ``skipped_reasons``). A ``--group-key`` that
    no image carries is an :class:`InputError`; when no image has any default group key (every
    image its own group) or a split ends up empty, a warning row says so.
    """
    import json

    from cvray.validate.leakage import group_leaks
    from cvray.validate.split import image_group, resplit_coco

    files = list(inputs.annotations)
    docs = load_annotation_docs(files)
    uris = annotation_splits(files)
    keys = tuple(inputs.group_keys or section.group_keys)
    stage = "data split"
    clean, rows = [], []
    for split, doc in docs.items():
        d, r = screen_coco(doc, uris[split], section, stage)
        clean.append(d)
        rows += r
    images = [img for d in clean for img in d["images"]]
    grouped = sum(1 for img in images if any(img.get(k) is not None for k in keys))
    if images and not grouped:
        if inputs.group_keys:
            raise InputError(f"--group-key {', '.join(keys)}: no image record has "
                             f"{'this field' if len(keys) == 1 else 'any of these fields'}")
        rows.append(issue(stage, "split.no_groups", f"no image has any of the group keys "
                          f"{', '.join(keys)}: every image is its own group (no leak-free grouping)"))
    try:
        out = resplit_coco(clean, dict(inputs.fractions), seed=inputs.seed, group_keys=keys)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    leaks = group_leaks(((s, img) for s, d in out.items() for img in d["images"]), keys)
    if leaks:  # cannot happen by construction; refuse to write leaky splits if it ever does
        raise RuntimeError(f"split by group produced group leakage: {leaks[0].message}")
    fractions = dict(inputs.fractions)
    n_groups = len({image_group(img, keys) for img in images})
    empty = [s for s, d in out.items() if not d["images"] and fractions.get(s, 0) > 0]
    rows += [issue(stage, "split.empty", f"split {s!r} (fraction {fractions[s]:g}) got no image: "
                   f"{n_groups} group(s) cannot fill {len(fractions)} splits") for s in empty]
    written = {}
    for split, doc in out.items():
        uri = storage.join(inputs.out, f"instances_{split}.json")
        storage.write_bytes(uri, json.dumps(doc).encode())
        written[split] = uri
    total = sum(len(d["images"]) for d in out.values())
    stats = {s: {"images": len(d["images"]), "annotations": len(d["annotations"]),
                 "fraction": round(len(d["images"]) / max(total, 1), 4)} for s, d in out.items()}
    skips = _skip_summary([r for r in rows if r.rule.split(".")[0] != "split"])
    result = {"files": written, "splits": stats, "group_keys": list(keys), "seed": inputs.seed, **skips}
    if empty:
        result["empty_splits"] = empty
    warnings = sum(1 for r in rows if r.severity == "warning")
    if warnings:
        result["warnings"] = warnings
    run.add_issues(rows)
    run.summary.update({"splits": stats, "group_keys": list(keys), **skips})
    return result


@dataclass(frozen=True)
class ConvertInputs:
    input: str                         # COCO JSON, YOLO folder (data.yaml + labels/) or MOT root
    to: str                            # yolo | mot | coco
    out: str                           # folder (yolo, mot) or JSON file (coco)
    images: str | None = None          # images root (YOLO -> COCO without metadata)


def check_convert_input(inputs: ConvertInputs) -> None:
    """:class:`InputError` when ``inputs.input`` is the wrong kind for ``--to`` (run it before a run
    exists): ``--to yolo|mot`` converts a COCO JSON *file*, ``--to coco`` a YOLO or MOT *folder*."""
    import pyarrow.fs as pafs

    src = inputs.input
    if not storage.exists(src):
        raise InputError(f"{src}: no such file or folder")
    fs, path = storage.resolve(src)
    is_dir = fs.get_file_info(path).type == pafs.FileType.Directory  # an S3 prefix with keys too
    if inputs.to in ("yolo", "mot") and is_dir:
        raise InputError(f"{src}: is a folder; --to {inputs.to} converts a COCO JSON file (a MOT root or a "
                         f"YOLO folder converts with --to coco)")
    if inputs.to == "coco" and not is_dir:
        raise InputError(f"{src}: is a file; --to coco converts a YOLO folder (data.yaml + labels/) or a "
                         f"MOT root / sequence folder" + (" (this is already COCO JSON)"
                                                          if src.lower().endswith(".json") else ""))


def run_convert(run: Run, section: ValidateConfig, inputs: ConvertInputs) -> dict[str, Any]:
    """COCO <-> YOLO txt, COCO video <-> MOT txt. The validation rules run first (on the COCO
    side): unusable records are left out, and every record not written -- those, and what the
    target format cannot hold -- is an issue row, counted by reason (``skipped_reasons``)."""
    import json

    from cvray.data.coco import DatasetError, load_coco
    from cvray.validate import convert
    from cvray.validate.reference import split_name

    src = inputs.input
    stage = "data convert"
    check_convert_input(inputs)
    try:
        if inputs.to in ("yolo", "mot"):
            doc, rows = screen_coco(load_coco(src), src, section, stage)
            if inputs.to == "yolo":
                result = convert.coco_to_yolo(doc, inputs.out, images=inputs.images, split=split_name(src))
            else:
                result = convert.coco_to_mot(doc, inputs.out)
        else:  # to coco: from a YOLO folder or a MOT root / sequence
            if storage.exists(storage.join(src, "labels")) or storage.exists(storage.join(src, "data.yaml")):
                doc = convert.yolo_to_coco(src, inputs.images)
            else:
                doc = convert.mot_to_coco(src)
            doc, rows = screen_coco(doc, src, section, stage)
            storage.write_bytes(inputs.out, json.dumps(doc).encode())
            result = {"images": len(doc["images"]), "annotations": len(doc["annotations"]),
                      "videos": len(doc.get("videos", []))}
    except (DatasetError, ValueError, FileNotFoundError) as exc:
        raise InputError(str(exc)) from exc
    for s in result.pop("skipped", []):  # what the target format cannot hold
        rows.append(issue(stage, "convert.unsupported", f"{src}: annotation {s.get('annotation_id')}: "
                          f"{s['reason']} (annotation skipped)", file=src, annotation_id=s.get("annotation_id")))
    skips = _skip_summary(rows)
    run.add_issues(rows)
    run.summary.update({**result, **skips})
    return {**result, **skips, "to": inputs.to, "out": inputs.out}
