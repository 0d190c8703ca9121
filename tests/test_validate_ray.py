"""The Ray Data validation gives the same issues and pairs as the single-process reference,
on local paths and on S3 (real moto server)."""
from __future__ import annotations

from collections import Counter

from _validate_corpus import build_defect_corpus

from cvray.data.synth import make_coco
from cvray.io import storage
from cvray.validate.config import ValidateConfig
from cvray.validate.distributed import validate_ray
from cvray.validate.reference import validate_local


def _key(i):
    return (i.rule, i.severity, i.image_id, i.annotation_id, i.file)


def test_ray_matches_local_on_defect_corpus(tmp_path, ray_session):
    c = build_defect_corpus(tmp_path)
    cfg = ValidateConfig(imbalance_ratio=4.0)
    local = validate_local(c["annotations"], c["images"], cfg)
    dist, images = validate_ray(c["annotations"], c["images"], cfg, batch_size=16)
    assert Counter(map(_key, dist.issues)) == Counter(map(_key, local.issues))
    assert dist.pairs == local.pairs
    assert any(p["cross_split"] for p in dist.pairs)
    assert dist.stats == local.stats
    assert images.count() == local.stats["images"]


def test_ray_validation_on_s3(tmp_path, ray_session, s3_bucket):
    info = make_coco(tmp_path, n_images=12, seed=2, image_size=(64, 64))
    storage.upload_tree(str(tmp_path / "coco"), s3_bucket + "/ds")
    anns = {s: f"{s3_bucket}/ds/annotations/instances_{s}.json" for s in info["annotations"]}
    res, _ = validate_ray(anns, s3_bucket + "/ds/images")
    assert res.n_errors == 0 and res.stats["images_decoded"] == 12
    # a file missing on S3 is one issue row naming it
    storage.write_bytes(anns["val"], storage.read_bytes(anns["val"]).replace(
        b'"file_name":"val/', b'"file_name":"val/missing_'))
    res, _ = validate_ray(anns, s3_bucket + "/ds/images")
    missing = [i for i in res.issues if i.rule == "image.missing"]
    assert missing and all(i.file.startswith("val/missing_") for i in missing)
    assert res.stats["images_decoded"] == 12 - len(missing)
