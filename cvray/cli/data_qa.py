"""Dataset-QA subcommands of ``cvray data``: ``card``, ``split --by group``, ``convert --to``.

``register_data_subcommands(data_subparsers)`` is called by :mod:`cvray.cli.data`.
"""
from __future__ import annotations

import argparse
import json

from cvray.cli.common import CliError, add_common_args, emit, load_cli_config, one_positional

__all__ = ["register_data_subcommands"]


def register_data_subcommands(ds) -> None:
    c = ds.add_parser("card", help="dataset card (Markdown + JSON) and overlay grids per split")
    c.add_argument("annotations", nargs="+", metavar="ANNOTATIONS.json")
    c.add_argument("--images", required=True, help="images root")
    c.add_argument("--out", required=True, help="output folder / URI for card.md, card.json, overlays/")
    c.add_argument("--name", default="dataset")
    c.add_argument("--source", action="append", default=[], help="a data source line (repeatable)")
    c.add_argument("--split-strategy", default="as given")
    c.add_argument("--artifact", action="append", default=[], help="a known artifact (repeatable)")
    c.add_argument("--no-validate", action="store_true", help="skip the validation/leakage summary")
    add_common_args(c)
    c.set_defaults(func=cmd_card)

    s = ds.add_parser("split", help="write leak-free splits: whole groups go to one split")
    s.add_argument("annotations", nargs="+", metavar="ANNOTATIONS.json")
    s.add_argument("--by", choices=("group",), default="group")
    s.add_argument("--group-key", action="append", default=None,
                   help="image field naming the group (repeatable; default validation.group_keys)")
    s.add_argument("--fractions", default="train=0.7,val=0.15,test=0.15",
                   help="split=fraction list, in images (default train=0.7,val=0.15,test=0.15)")
    s.add_argument("--seed", type=int, default=None)
    s.add_argument("--out", required=True, help="folder / URI for instances_<split>.json")
    add_common_args(s)
    s.set_defaults(func=cmd_split)

    v = ds.add_parser("convert", help="convert COCO <-> YOLO txt, COCO video <-> MOT txt")
    v.add_argument("input", help="COCO JSON, YOLO folder (data.yaml + labels/) or MOT root")
    v.add_argument("--to", required=True, choices=("yolo", "mot", "coco"))
    v.add_argument("--out", required=True, help="output folder (yolo, mot) or JSON file (coco)")
    v.add_argument("--images", default=None, help="images root (YOLO -> COCO without metadata)")
    add_common_args(v)
    v.set_defaults(func=cmd_convert)


def _files_and_overrides(args) -> list[str]:
    files = [a for a in args.annotations if "=" not in a]
    args.overrides = list(args.overrides) + [a for a in args.annotations if "=" in a]
    if not files:
        raise CliError("give at least one annotation file")
    return files


def _load_docs(files: list[str]) -> dict[str, dict]:
    from cvray.data.coco import DatasetError, load_coco
    from cvray.io import storage
    from cvray.validate.pipeline import annotation_splits

    try:
        splits = annotation_splits(files)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    docs = {}
    for split, uri in splits.items():
        if not storage.exists(uri):
            raise CliError(f"{uri}: no such annotation file")
        try:
            docs[split] = load_coco(uri)
        except DatasetError as exc:
            raise CliError(str(exc)) from exc
    return docs


def cmd_card(args: argparse.Namespace) -> int:
    from cvray.data.fingerprint import coco_fingerprint
    from cvray.io import storage
    from cvray.runs import run_context
    from cvray.validate.baselines import run_baselines
    from cvray.validate.pipeline import annotation_splits
    from cvray.validate.card import card_markdown, dataset_card, overlay_grid

    files = _files_and_overrides(args)
    cfg = load_cli_config(args)
    docs = _load_docs(files)
    validation, leakage, rows = {}, {}, []
    if not args.no_validate:
        from cvray.validate.pipeline import validate_local

        res = validate_local(files, args.images, cfg.validation)
        s = res.summary(cfg.validation)
        validation = {"issues": s["issues"], "rules": s["rules"], "passed": s["passed"]}
        leakage = {"cross_split_pairs": s["leak_pairs_cross_split"],
                   "within_split_duplicate_pairs": s["duplicate_pairs_within_split"],
                   "group_leaks": s["rules"].get("leak.group", 0),
                   "phash_threshold": cfg.validation.phash_threshold}
    if "train" in docs:
        for split, doc in docs.items():
            if split != "train" and doc["annotations"]:
                rows += run_baselines(docs["train"], doc, cfg.validation, split=split)[0]
    card = dataset_card(docs, name=args.name, sources=args.source, split_strategy=args.split_strategy,
                        validation=validation, leakage=leakage, known_artifacts=args.artifact,
                        baselines=rows)
    md = card_markdown(card)
    with run_context("data card", cfg, argv=getattr(args, "argv", None),
                     dataset=lambda: coco_fingerprint(annotation_splits(files))) as run:
        storage.write_bytes(storage.join(args.out, "card.md"), md.encode())
        storage.write_json(storage.join(args.out, "card.json"), card)
        run.write_artifact("card.md", md.encode())
        overlays = {}
        for split, doc in docs.items():
            png = overlay_grid(doc, args.images, seed=cfg.seed)
            uri = storage.join(args.out, "overlays", f"{split}.png")
            storage.write_bytes(uri, png)
            run.write_artifact(f"overlays/{split}.png", png)
            overlays[split] = uri
        run.summary.update({"card": storage.join(args.out, "card.md"), "splits": list(docs)})
    emit({"card_md": storage.join(args.out, "card.md"), "card_json": storage.join(args.out, "card.json"),
          "overlays": overlays, "splits": {k: v["images"] for k, v in card["splits"].items()},
          "run": run.id}, args, title="dataset card")
    return 0


def _fractions(text: str) -> dict[str, float]:
    out = {}
    for part in text.split(","):
        name, _, val = part.partition("=")
        try:
            out[name.strip()] = float(val)
        except ValueError:
            raise CliError(f"--fractions: {part!r} is not split=fraction") from None
    if not out or any(v < 0 for v in out.values()) or sum(out.values()) <= 0:
        raise CliError(f"--fractions: {text!r} must be non-negative and sum > 0")
    return out


def cmd_split(args: argparse.Namespace) -> int:
    from cvray.data.fingerprint import coco_fingerprint
    from cvray.io import storage
    from cvray.runs import run_context
    from cvray.validate.leakage import group_leaks
    from cvray.validate.pipeline import annotation_splits
    from cvray.validate.split import resplit_coco

    files = _files_and_overrides(args)
    cfg = load_cli_config(args)
    fractions = _fractions(args.fractions)
    keys = tuple(args.group_key or cfg.validation.group_keys)
    seed = cfg.seed if args.seed is None else args.seed
    docs = _load_docs(files)
    try:
        out = resplit_coco(list(docs.values()), fractions, seed=seed, group_keys=keys)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    leaks = group_leaks(((s, img) for s, d in out.items() for img in d["images"]), keys)
    if leaks:  # cannot happen by construction; refuse to write leaky splits if it ever does
        raise RuntimeError(f"split by group produced group leakage: {leaks[0].message}")
    written = {}
    with run_context("data split", cfg, argv=getattr(args, "argv", None), seed=seed,
                     dataset=lambda: coco_fingerprint(annotation_splits(files))) as run:
        for split, doc in out.items():
            uri = storage.join(args.out, f"instances_{split}.json")
            storage.write_bytes(uri, json.dumps(doc).encode())
            written[split] = uri
        total = sum(len(d["images"]) for d in out.values())
        stats = {s: {"images": len(d["images"]), "annotations": len(d["annotations"]),
                     "fraction": round(len(d["images"]) / max(total, 1), 4)} for s, d in out.items()}
        run.summary.update({"splits": stats, "group_keys": list(keys)})
    emit({"files": written, "splits": stats, "group_keys": list(keys), "seed": seed, "run": run.id},
         args, title="split by group")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from cvray.data.fingerprint import files_fingerprint
    from cvray.io import storage
    from cvray.runs import run_context

    src = one_positional(args, "input")
    cfg = load_cli_config(args)
    if not storage.exists(src):
        raise CliError(f"{src}: no such file or folder")
    with run_context("data convert", cfg, argv=getattr(args, "argv", None),
                     dataset=lambda: files_fingerprint({"input": src})) as run:
        result = _convert(args, src)
        run.summary.update({k: v for k, v in result.items() if k != "skipped"})
    skipped = result.pop("skipped", [])
    emit({**result, "skipped": len(skipped), "skipped_reasons": sorted({s["reason"] for s in skipped}),
          "to": args.to, "out": args.out, "run": run.id}, args, title=f"convert to {args.to}")
    return 0


def _convert(args: argparse.Namespace, src: str) -> dict:
    from cvray.data.coco import DatasetError, load_coco
    from cvray.io import storage
    from cvray.validate import convert

    try:
        if args.to == "yolo":
            result = convert.coco_to_yolo(load_coco(src), args.out)
        elif args.to == "mot":
            result = convert.coco_to_mot(load_coco(src), args.out)
        else:  # to coco: from a YOLO folder or a MOT root / sequence
            if storage.exists(storage.join(src, "labels")) or storage.exists(storage.join(src, "data.yaml")):
                doc = convert.yolo_to_coco(src, args.images)
            else:
                doc = convert.mot_to_coco(src)
            storage.write_bytes(args.out, json.dumps(doc).encode())
            result = {"images": len(doc["images"]), "annotations": len(doc["annotations"]),
                      "videos": len(doc.get("videos", []))}
    except (DatasetError, ValueError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from exc
    return result
