"""Dataset-QA subcommands of ``cvray data``: ``card``, ``split --by group``, ``convert --to``.

``register_data_subcommands(data_subparsers)`` is called by :mod:`cvray.cli.data`.
"""
from __future__ import annotations

import argparse

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


def _fingerprint(files: list[str]):
    from cvray.data.fingerprint import coco_fingerprint
    from cvray.validate.reference import annotation_splits

    return lambda: coco_fingerprint(annotation_splits(files))


def cmd_card(args: argparse.Namespace) -> int:
    from cvray.runs import run_context
    from cvray.validate.workflow import CardInputs, load_annotation_docs, run_card

    files = _files_and_overrides(args)
    cfg = load_cli_config(args)
    load_annotation_docs(files)  # InputError: one line, exit 2, before a run exists
    from cvray.io import storage

    if not storage.list_files(args.images):  # as validate: no grey placeholders for a typo
        raise CliError(f"{args.images}: no such images folder, or it is empty")
    inputs = CardInputs(annotations=tuple(files), images=args.images, out=args.out, name=args.name,
                        sources=tuple(args.source), split_strategy=args.split_strategy,
                        artifacts=tuple(args.artifact), validate=not args.no_validate)
    with run_context("data card", cfg, argv=getattr(args, "argv", None), dataset=_fingerprint(files)) as run:
        result = run_card(run, cfg.validation, inputs, seed=cfg.seed)
    emit({**result, "run": run.id}, args, title="dataset card")
    return 0


def cmd_split(args: argparse.Namespace) -> int:
    from cvray.runs import run_context
    from cvray.validate.workflow import SplitInputs, load_annotation_docs, parse_fractions, run_split

    files = _files_and_overrides(args)
    cfg = load_cli_config(args)
    seed = cfg.seed if args.seed is None else args.seed
    inputs = SplitInputs(annotations=tuple(files), out=args.out, fractions=parse_fractions(args.fractions),
                         group_keys=tuple(args.group_key or ()), seed=seed)
    load_annotation_docs(files)  # InputError before a run exists
    with run_context("data split", cfg, argv=getattr(args, "argv", None), seed=seed,
                     dataset=_fingerprint(files)) as run:
        result = run_split(run, cfg.validation, inputs)
    emit({**result, "run": run.id}, args, title="split by group")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from cvray.data.fingerprint import files_fingerprint
    from cvray.io import storage
    from cvray.runs import run_context
    from cvray.validate.workflow import ConvertInputs, check_convert_input, run_convert

    src = one_positional(args, "input")
    cfg = load_cli_config(args)
    if not storage.exists(src):
        raise CliError(f"{src}: no such file or folder")
    inputs = ConvertInputs(input=src, to=args.to, out=args.out, images=args.images)
    check_convert_input(inputs)  # InputError (the wrong kind for --to): one line, exit 2, no run
    with run_context("data convert", cfg, argv=getattr(args, "argv", None),
                     dataset=lambda: files_fingerprint({"input": src})) as run:
        result = run_convert(run, cfg.validation, inputs)
    emit({**result, "run": run.id}, args, title=f"convert to {args.to}")
    return 0
