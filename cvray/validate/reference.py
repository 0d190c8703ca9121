"""The validation workflow without Ray: annotations -> image jobs -> image rules + hashes ->
leakage. :mod:`cvray.validate.distributed` runs the same steps on Ray Data; this module is the
reference (and the single-process loop the benchmark compares against).

Example::

    res = validate_local({"train": ".../instances_train.json"}, ".../images")
    res.n_errors, res.by_rule()
"""
from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Iterable, Mapping, Sequence

from cvray.data.coco import PathEscapeError, safe_join
from cvray.io import storage
from cvray.runs.issues import Issue
from cvray.validate.annotations import AnnotationReport, validate_annotations_file
from cvray.validate.config import ValidateConfig
from cvray.validate.images import ImageReport, inspect_image
from cvray.validate.leakage import HashRecord, group_leaks, near_duplicate_pairs, pair_issues
from cvray.validate.rules import issue

__all__ = ["ValidationResult", "annotation_splits", "check_image_job", "image_jobs",
           "split_name", "validate_local"]


def split_name(uri: str) -> str:
    """``.../instances_val.json`` -> ``val``; any other file -> its stem."""
    base = os.path.basename(str(uri).rstrip("/"))
    m = re.match(r"(?:instances_)?(.+?)\.json$", base)
    return m.group(1) if m else base


def annotation_splits(uris: Sequence[str] | Mapping[str, str]) -> dict[str, str]:
    """{split: uri}; split names come from the file names and must be unique."""
    if isinstance(uris, Mapping):
        return dict(uris)
    out: dict[str, str] = {}
    for u in uris:
        name = split_name(u)
        if name in out:
            raise ValueError(f"two annotation files map to split {name!r}: {out[name]} and {u}")
        out[name] = u
    return out


def _group(img: dict, keys: Sequence[str]) -> str:
    for k in keys:
        if img.get(k) is not None:
            return f"{k}={img[k]}"
    return ""


def image_jobs(reports: Mapping[str, AnnotationReport], images_root: str,
               cfg: ValidateConfig) -> tuple[list[dict], list[Issue]]:
    """One job per image record that passed the schema (plus path-escape issues)."""
    jobs, issues = [], []
    for split, rep in reports.items():
        for iid, img in rep.index.images.items():
            try:
                uri = safe_join(images_root, img["file_name"])
            except PathEscapeError as exc:
                issues.append(issue("image.path_escape", str(exc), file=img["file_name"], image_id=iid))
                continue
            jobs.append({"key": len(jobs), "split": split, "image_id": iid,
                         "file_name": img["file_name"], "uri": uri, "height": img["height"],
                         "width": img["width"], "group": _group(img, cfg.group_keys)})
    return jobs, issues


def check_image_job(job: Mapping, cfg: ValidateConfig) -> ImageReport:
    """Read one image (local or S3) and apply the image rules; a missing file is an issue row."""
    try:
        data = storage.read_bytes(job["uri"])
    except storage.StorageError as exc:
        rep = ImageReport(file=job["file_name"], image_id=job["image_id"])
        rep.issues.append(issue("image.missing", f"{job['file_name']}: {exc}",
                                file=job["file_name"], image_id=job["image_id"]))
        return rep
    return inspect_image(data, job["file_name"], job["image_id"],
                         (job["height"], job["width"]), cfg)


@dataclass
class ValidationResult:
    issues: list[Issue] = field(default_factory=list)
    pairs: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    @property
    def n_errors(self) -> int:
        return sum(i.severity == "error" for i in self.issues)

    def by_rule(self) -> dict[str, int]:
        return dict(sorted(Counter(i.rule for i in self.issues).items()))

    def by_severity(self) -> dict[str, int]:
        c = Counter(i.severity for i in self.issues)
        return {s: c.get(s, 0) for s in ("error", "warning", "info")}

    def issue_rows(self) -> list[dict]:
        return [asdict(i) for i in self.issues]

    def summary(self, cfg: ValidateConfig) -> dict:
        return {**self.stats, "issues": self.by_severity(), "rules": self.by_rule(),
                "leak_pairs_cross_split": sum(p["cross_split"] for p in self.pairs),
                "duplicate_pairs_within_split": sum(not p["cross_split"] for p in self.pairs),
                "max_errors": cfg.max_errors, "passed": self.n_errors <= cfg.max_errors}


def hash_records(jobs: Iterable[Mapping], reports: Iterable[ImageReport]) -> list[HashRecord]:
    return [HashRecord(key=j["key"], split=j["split"], image_id=j["image_id"], file=j["file_name"],
                       group=j["group"], phash=r.phash, sha=r.sha)
            for j, r in zip(jobs, reports) if r.ok and r.phash is not None]


def annotation_stage(annotation_uris, cfg: ValidateConfig):
    """Shared first step: validate every annotation file; group leakage from image records."""
    splits = annotation_splits(annotation_uris)
    reports = {s: validate_annotations_file(u, cfg) for s, u in splits.items()}
    issues = [i for r in reports.values() for i in r.issues]
    issues += group_leaks(((s, img) for s, r in reports.items() for img in r.index.images.values()),
                          cfg.group_keys)
    return reports, issues


def validate_local(annotation_uris, images_root: str, cfg: ValidateConfig | None = None, *,
                   on_progress=None) -> ValidationResult:
    """Whole validation in this process (the reference for the Ray version);
    ``on_progress(done, total)`` as images are checked."""
    cfg = cfg or ValidateConfig()
    reports, issues = annotation_stage(annotation_uris, cfg)
    jobs, path_issues = image_jobs(reports, images_root, cfg)
    issues += path_issues
    image_reports = []
    for j in jobs:
        image_reports.append(check_image_job(j, cfg))
        if on_progress is not None and (len(image_reports) % 16 == 0 or len(image_reports) == len(jobs)):
            on_progress(len(image_reports), len(jobs))
    for r in image_reports:
        issues.extend(r.issues)
    pairs = near_duplicate_pairs(hash_records(jobs, image_reports), cfg.phash_threshold)
    issues += pair_issues(pairs)
    stats = {"splits": {s: len(r.index.images) for s, r in reports.items()},
             "images": len(jobs), "images_decoded": sum(r.ok for r in image_reports),
             "annotations": sum(r.index.n_annotations for r in reports.values())}
    return ValidationResult(issues=issues, pairs=pairs, stats=stats)
