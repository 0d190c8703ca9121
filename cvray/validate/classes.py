"""Class rules: unused categories, classes with too few instances, extreme imbalance."""
from __future__ import annotations

from collections import Counter

from cvray.runs.issues import Issue
from cvray.validate.config import ValidateConfig
from cvray.validate.rules import issue
from cvray.validate.schema import SchemaIndex

__all__ = ["check_classes", "class_counts"]


def class_counts(index: SchemaIndex) -> dict[int, int]:
    """Non-crowd instances per category id (every category present, zero when unused)."""
    counts = Counter(a["category_id"] for a in index.annotations if not a.get("iscrowd"))
    return {cid: counts.get(cid, 0) for cid in sorted(index.categories)}


def check_classes(index: SchemaIndex, file: str, cfg: ValidateConfig) -> list[Issue]:
    counts = class_counts(index)
    out = []
    names = {cid: index.categories[cid].get("name") for cid in counts}
    for cid, n in counts.items():
        if n == 0:
            out.append(issue("class.unused", f"{file}: category {cid} ({names[cid]!r}) has no "
                             "annotation", file=file))
        elif n < cfg.min_class_samples:
            out.append(issue("class.too_few", f"{file}: category {cid} ({names[cid]!r}) has {n} "
                             f"instances (< {cfg.min_class_samples})", file=file))
    used = {c: n for c, n in counts.items() if n > 0}
    if len(used) >= 2:
        hi, lo = max(used, key=used.get), min(used, key=used.get)
        ratio = used[hi] / used[lo]
        if ratio > cfg.imbalance_ratio:
            out.append(issue("class.imbalance", f"{file}: {names[hi]!r} has {used[hi]} instances, "
                             f"{names[lo]!r} {used[lo]} (ratio {ratio:.1f} > {cfg.imbalance_ratio:g})",
                             file=file))
    return out
