"""The catalogue of validation rules: one name, one severity, one line of meaning each.

Rule modules (:mod:`images`, :mod:`schema`, :mod:`boxes`, :mod:`masks`, :mod:`classes`,
:mod:`leakage`, :mod:`baselines`) emit :class:`cvray.runs.issues.Issue` rows through
:func:`issue`, so a rule's severity is stated once, here.
"""
from __future__ import annotations

from dataclasses import dataclass

from cvray.runs.issues import Issue

__all__ = ["RULES", "Rule", "issue"]

STAGE = "validate"


@dataclass(frozen=True)
class Rule:
    name: str
    severity: str
    description: str


_R = [
    # images
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
    # schema
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
]

RULES: dict[str, Rule] = {name: Rule(name, sev, desc) for name, sev, desc in _R}


def issue(rule: str, message: str, *, file: str | None = None, image_id=None,
          annotation_id=None, severity: str | None = None) -> Issue:
    """An issue row for a catalogued rule (severity from the catalogue unless overridden)."""
    def _id(v):
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    return Issue(stage=STAGE, rule=rule, severity=severity or RULES[rule].severity,
                 message=message, file=file, image_id=_id(image_id), annotation_id=_id(annotation_id))
