"""Validation rules: one injected defect per rule found with the right ids; a clean synthetic set
has zero errors; leakage by hash bucketing finds re-encoded/resized/brightened copies only."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from _validate_corpus import build_defect_corpus

from cvray.data.synth import make_coco
from cvray.validate.config import ValidateConfig
from cvray.validate.leakage import HashRecord, band_bounds, hamming, near_duplicate_pairs
from cvray.validate.reference import validate_local
from cvray.validate.rules import RULES

CFG = ValidateConfig(imbalance_ratio=4.0)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_defect_corpus(tmp_path_factory.mktemp("defects"))


@pytest.fixture(scope="module")
def result(corpus):
    return validate_local(corpus["annotations"], corpus["images"], CFG)


def _found(result, rule):
    return {(i.image_id, i.annotation_id) for i in result.issues if i.rule == rule}


def test_every_injected_defect_found_with_ids(corpus, result):
    missing = {}
    for rule, targets in corpus["expected"].items():
        found = _found(result, rule)
        assert found, f"rule {rule} not reported"
        for image_id, ann_id in targets:
            if image_id is None and ann_id is None:
                continue
            if not any((image_id is None or f[0] == image_id) and
                       (ann_id is None or f[1] == ann_id) for f in found):
                missing[rule] = (image_id, ann_id, sorted(found, key=str)[:5])
    assert not missing, missing
    for i in result.issues:
        assert i.severity == RULES[i.rule].severity and i.message


def test_every_catalogued_rule_is_exercised(corpus):
    untested = set(RULES) - set(corpus["expected"]) - {
        "dup.exact_within_split", "dup.near_within_split", "baseline.suspicious"}
    assert not untested


def test_bad_file_does_not_stop_the_rest(corpus, result):
    # the broken JSON is one row; the other splits were still validated completely
    assert [i.file for i in result.issues if i.rule == "schema.invalid_json"] == [
        corpus["annotations"]["broken"]]
    assert set(result.stats["splits"]) == {"train", "val", "test", "broken"}
    assert result.stats["images"] > 20


def test_leakage_pairs(corpus, result):
    src = corpus["source_image_id"]
    cross = [p for p in result.pairs if p["cross_split"]]
    pairs = {(p["image_id_a"], p["image_id_b"]) for p in cross} | {
        (p["image_id_b"], p["image_id_a"]) for p in cross}
    for name, iid in corpus["leak_ids"].items():
        assert (src, iid) in pairs, name
    kinds = {p["image_id_b"] if p["image_id_a"] == src else p["image_id_a"]: p["kind"] for p in cross}
    assert kinds[corpus["leak_ids"]["exact"]] == "exact"
    assert kinds[corpus["leak_ids"]["reencoded"]] == "near"
    ids = {p["image_id_a"] for p in result.pairs} | {p["image_id_b"] for p in result.pairs}
    assert corpus["unrelated_id"] not in ids
    for p in cross:
        assert 0 <= p["distance"] <= CFG.phash_threshold and p["split_a"] != p["split_b"]


def test_clean_synthetic_dataset_has_no_errors(tmp_path):
    info = make_coco(tmp_path, n_images=40, seed=5)
    res = validate_local(info["annotations"], info["images_dir"])
    assert res.n_errors == 0, [i for i in res.issues if i.severity == "error"][:5]
    assert res.stats["images_decoded"] == 40
    assert not [p for p in res.pairs if p["cross_split"]]


def test_bucketing_equals_brute_force():
    rng = np.random.default_rng(0)
    base = rng.integers(-2**63, 2**63 - 1, size=40, dtype=np.int64)
    hashes = []
    for h in base:  # clusters of hashes at small Hamming distances
        hashes.append(int(h))
        for _ in range(3):
            flips = rng.choice(64, size=int(rng.integers(0, 7)), replace=False)
            v = np.uint64(np.int64(h).view(np.uint64))
            for f in flips:
                v ^= np.uint64(1) << np.uint64(int(f))
            hashes.append(int(np.uint64(v).view(np.int64)))
    recs = [HashRecord(key=i, split="a" if i % 2 else "b", image_id=i, file=f"{i}.jpg", group="",
                       phash=h, sha=f"s{i}") for i, h in enumerate(hashes)]
    for t in (0, 3, 5):
        got = {(p["image_id_a"], p["image_id_b"]) for p in near_duplicate_pairs(recs, t)}
        got = {tuple(sorted(x)) for x in got}
        h = np.array(hashes, dtype=np.int64)
        d = hamming(h[:, None], h[None, :])
        want = {(i, j) for i in range(len(h)) for j in range(i + 1, len(h)) if d[i, j] <= t}
        assert got == want, t
        assert len(band_bounds(t)) == t + 1


def test_cores_do_not_import_ray():
    code = ("import sys, cvray.validate.reference, cvray.validate.annotations, cvray.validate.leakage;"
            "assert 'ray' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_worker_imports_stay_light():
    """Ray workers import the validation cores; they must not drag in torch or ray."""
    code = ("import sys, cvray.validate.reference, cvray.validate.config;"
            "bad = [m for m in ('torch', 'ray') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
