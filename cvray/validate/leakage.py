"""Leakage: exact and perceptual-hash near duplicates, and groups that cross splits (pure core).

Near duplicates are found by *hash bucketing*, never by comparing all pairs:

1. split each 64-bit pHash into ``t + 1`` contiguous bands (``t`` = Hamming threshold);
2. pigeonhole: if two hashes differ in at most ``t`` bits, at least one band is identical, so
   every near-duplicate pair shares a (band index, band value) bucket;
3. within each bucket, verify the exact Hamming distance of the candidate pairs;
4. a pair equal in several bands is emitted only by the first of them (no global "seen" set,
   so the same code runs per bucket in a Ray ``groupby``).

The Ray adapter (:mod:`cvray.validate.distributed`) runs steps 1-4 as ``flat_map`` -> ``groupby``
-> ``map_groups``; :func:`near_duplicate_pairs` does the same in one process.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pyarrow as pa

from cvray.runs.issues import Issue
from cvray.validate.rules import issue

__all__ = ["PAIR_SCHEMA", "HashRecord", "band_bounds", "band_values", "bucket_pairs",
           "group_leaks", "hamming", "near_duplicate_pairs",
           "pair_issues", "pairs_to_table"]

PAIRS_SCHEMA_VERSION = 1
PAIR_SCHEMA = pa.schema(
    [
        pa.field("kind", pa.string(), nullable=False),  # exact | near
        pa.field("distance", pa.int32(), nullable=False),  # Hamming distance of the pHashes
        pa.field("cross_split", pa.bool_(), nullable=False),
        pa.field("split_a", pa.string()), pa.field("image_id_a", pa.int64()),
        pa.field("file_a", pa.string()), pa.field("group_a", pa.string()),
        pa.field("split_b", pa.string()), pa.field("image_id_b", pa.int64()),
        pa.field("file_b", pa.string()), pa.field("group_b", pa.string()),
    ],
    metadata={"cvray.table": "leakage_pairs", "cvray.schema_version": str(PAIRS_SCHEMA_VERSION)},
)


@dataclass(frozen=True)
class HashRecord:
    """One decoded image as leakage sees it. ``key`` is unique across the corpus."""

    key: int
    split: str
    image_id: int | None
    file: str
    group: str
    phash: int  # signed int64 view of the 64-bit hash
    sha: str


def _u64(h) -> np.ndarray:
    return np.asarray(h, dtype=np.int64).view(np.uint64)


def hamming(a, b) -> np.ndarray:
    """Bitwise Hamming distance of int64-viewed 64-bit hashes (broadcasting)."""
    return np.bitwise_count(_u64(a) ^ _u64(b)).astype(np.int32)


def band_bounds(threshold: int) -> list[tuple[int, int]]:
    """``threshold + 1`` contiguous bit ranges (lo, hi) covering the 64 bits, sizes within 1."""
    k = threshold + 1
    edges = np.linspace(0, 64, k + 1).round().astype(int)
    return [(int(edges[i]), int(edges[i + 1])) for i in range(k)]


def band_values(hashes, threshold: int) -> np.ndarray:
    """(N, threshold + 1) int64 band values (bits lo..hi of each hash, as an integer)."""
    h = _u64(hashes)
    out = []
    for lo, hi in band_bounds(threshold):
        width = hi - lo
        mask = np.uint64((1 << width) - 1) if width < 64 else np.uint64(0xFFFFFFFFFFFFFFFF)
        out.append(((h >> np.uint64(lo)) & mask).view(np.int64))
    return np.stack(out, axis=1) if out else np.zeros((len(h), 0), np.int64)


def bucket_pairs(band: int, members: Sequence[HashRecord], threshold: int) -> list[dict]:
    """Verified near-duplicate pairs among the members of one (band, value) bucket.

    A pair is emitted only here if ``band`` is the first band in which the two hashes agree.
    Byte-identical files (equal ``sha``) have equal hashes, so they meet in band 0 too and come
    out as ``exact`` pairs: one shuffle finds both kinds.
    """
    if len(members) < 2:
        return []
    hs = np.array([m.phash for m in members], dtype=np.int64)
    bv = band_values(hs, threshold)
    dist = hamming(hs[:, None], hs[None, :])
    out = []
    n = len(members)
    for i in range(n):
        for j in range(i + 1, n):  # bucket-local; buckets are small for a sane threshold
            if dist[i, j] > threshold:
                continue
            first = int(np.argmax(bv[i] == bv[j]))
            if first == band:
                exact = bool(members[i].sha) and members[i].sha == members[j].sha
                out.append(_pair("exact" if exact else "near", int(dist[i, j]), members[i],
                                 members[j]))
    return out


def _pair(kind: str, distance: int, a: HashRecord, b: HashRecord) -> dict:
    if (a.split, a.key) > (b.split, b.key):
        a, b = b, a
    return {"kind": kind, "distance": distance, "cross_split": a.split != b.split,
            "split_a": a.split, "image_id_a": a.image_id, "file_a": a.file, "group_a": a.group,
            "split_b": b.split, "image_id_b": b.image_id, "file_b": b.file, "group_b": b.group}


def near_duplicate_pairs(records: Sequence[HashRecord], threshold: int) -> list[dict]:
    """Single-process bucketing (the same algorithm as the Ray adapter): exact + near pairs."""
    out: list[dict] = []
    if not records:
        return out
    bv = band_values([r.phash for r in records], threshold)
    for band in range(bv.shape[1]):
        buckets = defaultdict(list)
        for r, v in zip(records, bv[:, band]):
            buckets[int(v)].append(r)
        for members in buckets.values():
            out.extend(bucket_pairs(band, members, threshold))
    return sorted(out, key=lambda p: (p["kind"], p["split_a"], p["file_a"], p["split_b"], p["file_b"]))


def pair_issues(pairs: Iterable[dict]) -> list[Issue]:
    """One issue per pair: cross-split pairs are leakage errors, same-split ones duplicates."""
    out = []
    for p in pairs:
        if p["cross_split"]:
            rule = "leak.exact_duplicate" if p["kind"] == "exact" else "leak.near_duplicate"
        else:
            rule = "dup.exact_within_split" if p["kind"] == "exact" else "dup.near_within_split"
        out.append(issue(rule, f"{p['split_a']}:{p['file_a']} (image {p['image_id_a']}, group "
                         f"{p['group_a'] or '-'}) and {p['split_b']}:{p['file_b']} (image "
                         f"{p['image_id_b']}, group {p['group_b'] or '-'}) are {p['kind']} duplicates "
                         f"(pHash distance {p['distance']})", file=p["file_b"],
                         image_id=p["image_id_b"]))
    return out


def pairs_to_table(pairs: Iterable[dict]) -> pa.Table:
    rows = list(pairs)
    return pa.Table.from_pylist(rows, schema=PAIR_SCHEMA) if rows else PAIR_SCHEMA.empty_table()


def group_leaks(images: Iterable[tuple[str, dict]], group_keys: Sequence[str]) -> list[Issue]:
    """Groups (``scene_id``, ``video_id`` ...) whose images sit in more than one split.

    ``images`` yields ``(split, image_record)``; one issue per leaking (key, value), naming the
    splits and an example image of each.
    """
    where: dict[tuple[str, str], dict[str, tuple]] = defaultdict(dict)
    for split, img in images:
        for key in group_keys:
            if key in img and img[key] is not None:
                where[(key, str(img[key]))].setdefault(split, (img.get("id"), img.get("file_name")))
    out = []
    for (key, value), splits in sorted(where.items()):
        if len(splits) > 1:
            names = ", ".join(f"{s} (e.g. image {iid} {fn})" for s, (iid, fn) in sorted(splits.items()))
            first = sorted(splits.items())[-1][1]
            out.append(issue("leak.group", f"{key}={value} appears in {len(splits)} splits: {names}",
                             file=first[1], image_id=first[0]))
    return out
