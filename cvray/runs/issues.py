"""The issues table: one row per problem found in the input (never a crash, never a silent drop).

Every stage builds its rows with :func:`issue` from one rule catalogue, :data:`RULES` (rule id ->
severity, description), so a rule means the same and weighs the same whichever stage finds it
(``image.unreadable`` is an error in ingest, validate, training and predict alike).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Mapping

import pyarrow as pa

__all__ = ["ISSUE_SCHEMA", "ISSUES_SCHEMA_VERSION", "Issue", "RULES", "Rule", "SEVERITIES", "issue",
           "issues_to_table"]

ISSUES_SCHEMA_VERSION = 1
SEVERITIES = ("error", "warning", "info")

ISSUE_SCHEMA = pa.schema(
    [
        pa.field("stage", pa.string(), nullable=False),      # ingest, validate, predict, track ...
        pa.field("rule", pa.string(), nullable=False),       # e.g. image.unreadable
        pa.field("severity", pa.string(), nullable=False),   # error | warning | info
        pa.field("file", pa.string()),                       # file / URI the problem is in
        pa.field("image_id", pa.int64()),
        pa.field("annotation_id", pa.int64()),
        pa.field("message", pa.string(), nullable=False),
    ],
    metadata={"cvray.table": "issues", "cvray.schema_version": str(ISSUES_SCHEMA_VERSION)},
)


@dataclass(frozen=True)
class Issue:
    stage: str
    rule: str
    severity: str
    message: str
    file: str | None = None
    image_id: int | None = None
    annotation_id: int | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"issue severity must be one of {SEVERITIES}, got {self.severity!r}")


@dataclass(frozen=True)
class Rule:
    name: str
    severity: str
    description: str


_R = [
    # images (ingest, validate, train, predict)
    ("image.missing", "error", "the file named by an image record does not exist"),
    ("image.path_escape", "error", "file_name is absolute or escapes the images root"),
    ("image.zero_byte", "error", "the file is empty"),
    ("image.unreadable", "error", "the bytes cannot be decoded as an image"),
    ("image.truncated", "error", "the file ends before the image data does"),
    ("image.unsupported_format", "error", "a format outside validate.supported_formats (GIF, HEIC ...)"),
    ("image.size_mismatch", "error", "decoded width/height differ from the declared ones"),
    ("image.exif_orientation", "warning", "EXIF orientation != 1: viewers rotate, most loaders do not"),
    ("image.grayscale", "warning", "single-channel (or grey+alpha) image"),
    ("image.high_bit_depth", "warning", "16-bit (or 32-bit) samples; 8-bit loaders clip or rescale"),
    ("image.cmyk", "warning", "CMYK / YCCK colour space"),
    ("image.alpha", "warning", "an alpha channel that loaders drop"),
    # videos and predictions (predict)
    ("video.unreadable", "error", "a video file that cannot be opened"),
    ("video.frame_unreadable", "error", "a video frame that cannot be decoded"),
    ("prediction.nan", "error", "a forward pass produced NaN/inf boxes or scores (not written)"),
    # annotations (train) and schema (validate)
    ("annotation.invalid", "error", "an annotation that cannot become a training target"),
    ("schema.invalid_json", "error", "the annotation file is not valid JSON / not a COCO object"),
    ("schema.missing_key", "error", "a required key is missing (top level, image, annotation, category)"),
    ("schema.wrong_type", "error", "a value has the wrong type"),
    ("schema.duplicate_id", "error", "two images / annotations / categories share an id"),
    ("schema.missing_image", "error", "an annotation points to an image id that does not exist"),
    ("schema.missing_category", "error", "an annotation points to a category id that does not exist"),
    ("schema.missing_iscrowd", "warning", "annotation without iscrowd (pycocotools silently treats it as 0)"),
    ("schema.duplicate_file", "warning", "two image records name the same file"),
    # boxes
    ("box.non_finite", "error", "a bbox value is NaN or infinite"),
    ("box.non_positive", "error", "bbox width or height <= 0"),
    ("box.out_of_bounds", "error", "bbox runs past the image by more than validate.box_tolerance_px"),
    ("box.normalized_coordinates", "error", "bbox looks normalised to [0, 1] instead of pixels"),
    ("box.tiny", "info", "bbox area below validate.tiny_area"),
    # masks
    ("mask.polygon_too_few_points", "error", "a polygon with fewer than 3 points (or an odd coordinate count)"),
    ("mask.empty", "error", "empty segmentation (no polygon, or a mask with no pixel)"),
    ("mask.invalid_rle", "error", "an RLE that cannot be decoded"),
    ("mask.rle_size_mismatch", "error", "RLE size differs from the image size"),
    ("mask.area_box_mismatch", "warning", "mask area far from the box area (mask_fill_min / mask_fill_max)"),
    ("mask.area_field_mismatch", "warning", "the annotation's area field differs from its mask area"),
    # classes
    ("class.unused", "warning", "a category without any annotation"),
    ("class.too_few", "warning", "a category with fewer than validate.min_class_samples instances"),
    ("class.imbalance", "warning", "max/min instances per class above validate.imbalance_ratio"),
    # leakage
    ("leak.exact_duplicate", "error", "byte-identical images in two splits"),
    ("leak.near_duplicate", "error", "perceptual-hash near duplicates in two splits"),
    ("dup.exact_within_split", "warning", "byte-identical images inside one split"),
    ("dup.near_within_split", "info", "perceptual-hash near duplicates inside one split"),
    ("leak.group", "error", "a group (video, scene, source, camera) appears in two splits"),
    # baselines
    ("baseline.suspicious", "warning", "a trivial baseline scores suspiciously high AP"),
    # learning diagnostics (train; see cvray.train.diagnostics)
    ("train.loss_not_falling", "warning", "the loss fell by less than train.diagnostics.min_loss_drop after warmup"),
    ("train.no_positives", "warning", "training steps whose batch held no ground-truth instance"),
    ("train.anchor_mismatch", "warning", "many training boxes overlap no anchor shape at the model's input scale"),
    ("train.zero_ap", "warning", "the final validation AP is exactly 0"),
    # dataset tools (data split / convert)
    ("split.no_groups", "warning", "no image has any group key: every image is its own group"),
    ("split.empty", "warning", "a split with a positive fraction got no image (too few groups)"),
    ("convert.unsupported", "warning", "a record the target format cannot hold (crowd region in YOLO, "
     "annotation without a track in MOT), not written"),
    # tracking
    ("sequence.failed", "error", "a sequence could not be tracked (its error is the message)"),
    ("sequence.bad_seqinfo", "error", "seqinfo.ini frameRate not positive / seqLength negative / unparsable (sequence skipped)"),
    ("sequence.no_detections", "warning", "an empty det.txt: every frame is tracked as empty"),
    ("detection.invalid", "error", "a detection row with non-positive width or height (dropped)"),
    ("render.no_frames", "warning", "--render for a sequence without frames: no review video"),
    # robustness
    ("robustness.corruption_failed", "error", "a corruption raised on an image (the image is left out of that cell)"),
    ("robustness.cell_failed", "error", "a corruption x severity cell could not be evaluated (its error is the message)"),
    ("calibrate.slice_failed", "error", "a calibration slice (a split, clean or under one corruption x severity) "
     "could not be predicted and matched (its error is the message)"),
]

RULES: dict[str, Rule] = {name: Rule(name, sev, desc) for name, sev, desc in _R}


def _id(v):
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def issue(stage: str, rule: str, message: str, *, file: str | None = None, image_id=None,
          annotation_id=None, severity: str | None = None) -> Issue:
    """The issue row of a catalogued ``rule`` (its severity from :data:`RULES`).

    ``severity`` is only for rules outside the catalogue; a catalogued rule keeps its own.

    >>> issue("predict", "image.unreadable", "a.jpg: not an image", file="a.jpg").severity
    'error'
    """
    known = RULES.get(rule)
    if known is None and severity is None:
        raise KeyError(f"issue rule {rule!r} is not in cvray.runs.issues.RULES; add it there")
    return Issue(stage=stage, rule=rule, severity=known.severity if known else severity,
                 message=message, file=file, image_id=_id(image_id), annotation_id=_id(annotation_id))


def issues_to_table(rows: Iterable[Issue | Mapping]) -> pa.Table:
    """The ``issues`` table; a catalogued rule gets its catalogue severity whoever built the row."""
    cols: dict[str, list] = {f.name: [] for f in ISSUE_SCHEMA}
    for r in rows:
        d = asdict(r) if isinstance(r, Issue) else dict(r)
        if d.get("rule") in RULES:
            d["severity"] = RULES[d["rule"]].severity
        Issue(**{k: d.get(k) for k in cols})  # validate severity and required keys
        for k in cols:
            v = d.get(k)
            cols[k].append(int(v) if k in ("image_id", "annotation_id") and v is not None else v)
    return pa.table(cols, schema=ISSUE_SCHEMA)
