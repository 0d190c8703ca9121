"""Annotation-file validation: parse, then schema -> boxes -> masks -> classes (pure core).

Example::

    report = validate_annotations_file("instances_val.json")
    [i.rule for i in report.issues if i.severity == "error"]
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cvray.io import storage
from cvray.runs.issues import Issue
from cvray.validate.boxes import check_box
from cvray.validate.classes import check_classes, class_counts
from cvray.validate.config import ValidateConfig
from cvray.validate.masks import check_mask
from cvray.validate.rules import issue
from cvray.validate.schema import SchemaIndex, check_schema

__all__ = ["AnnotationReport", "load_annotation_doc", "validate_annotations",
           "validate_annotations_file"]


@dataclass
class AnnotationReport:
    file: str
    issues: list[Issue] = field(default_factory=list)
    index: SchemaIndex = field(default_factory=SchemaIndex)
    class_counts: dict[int, int] = field(default_factory=dict)
    doc: dict[str, Any] | None = None


def load_annotation_doc(uri: str) -> tuple[Any, list[Issue]]:
    """Read and parse a COCO JSON file; a bad file is an issue row, not an exception."""
    try:
        raw = storage.read_bytes(uri)
    except storage.StorageError as exc:
        return None, [issue("schema.invalid_json", f"{uri}: cannot read annotations ({exc})", file=uri)]
    try:
        return json.loads(raw), []
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return None, [issue("schema.invalid_json", f"{uri}: not valid JSON ({exc})", file=uri)]


def validate_annotations(doc: Any, file: str, cfg: ValidateConfig | None = None) -> AnnotationReport:
    """All annotation-level rules on a parsed document; never raises on bad content."""
    cfg = cfg or ValidateConfig()
    issues, index = check_schema(doc, file)
    for ann in index.annotations:
        img = index.images[ann["image_id"]]
        issues.extend(check_box(ann, img, file, cfg))
        issues.extend(check_mask(ann, img, file, cfg))
    issues.extend(check_classes(index, file, cfg))
    return AnnotationReport(file=file, issues=issues, index=index, class_counts=class_counts(index),
                            doc=doc if isinstance(doc, dict) else None)


def validate_annotations_file(uri: str, cfg: ValidateConfig | None = None) -> AnnotationReport:
    doc, issues = load_annotation_doc(uri)
    if issues:  # unreadable or not JSON; a file holding `null` parses and fails the schema rules
        return AnnotationReport(file=uri, issues=issues)
    return validate_annotations(doc, uri, cfg)
