"""Ray Data ingest on real Ray: COCO (local and S3), MOT sequences and videos, failures as rows."""
import json
import shutil

import cv2
import numpy as np
import pytest

from cvray.data.ingest import issue_rows, read_coco, read_mot_sequence, read_video
from cvray.data.synth import make_coco, make_mot
from cvray.data.workflow import coco_layout, ingest_coco
from cvray.io import storage
from cvray.runs import read_table, start_run


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    coco = make_coco(out, 12, seed=3, image_size=(64, 64))
    mot = make_mot(out, 1, seed=3, n_frames=8, n_objects=3, image_size=(64, 64))
    return {"root": out, "coco": coco, "mot": mot}


def _break_images(coco_root):
    """One corrupt JPEG, one zero-byte file, one missing file, one path escaping the root."""
    ann_path = coco_root / "annotations" / "instances_train.json"
    data = json.loads(ann_path.read_text())
    imgs = data["images"]
    (coco_root / "images" / imgs[0]["file_name"]).write_bytes(b"\xff\xd8garbage")
    (coco_root / "images" / imgs[1]["file_name"]).write_bytes(b"")
    (coco_root / "images" / imgs[2]["file_name"]).unlink()
    imgs[3]["file_name"] = "../../etc/passwd"
    ann_path.write_text(json.dumps(data))
    return {imgs[0]["id"]: "image.unreadable", imgs[1]["id"]: "image.zero_byte",
            imgs[2]["id"]: "image.missing", imgs[3]["id"]: "image.path_escape"}, len(imgs)


def test_coco_ingest_turns_every_bad_image_into_an_issue_row(ray_session, synth, tmp_path):
    coco_root = tmp_path / "coco"
    shutil.copytree(synth["root"] / "coco", coco_root)
    expected, n = _break_images(coco_root)
    rows = read_coco(str(coco_root / "annotations" / "instances_train.json"), str(coco_root / "images"),
                     split="train").take_all()
    assert len(rows) == n  # nothing dropped
    bad = {r["image_id"]: r["rule"] for r in rows if not r["ok"]}
    assert bad == expected
    good = [r for r in rows if r["ok"]]
    for r in good:
        assert r["image"].shape == (r["height"], r["width"], 3) and r["image"].dtype == np.uint8
    issues = issue_rows(rows)
    assert {i["image_id"] for i in issues} == set(expected)
    assert all(i["message"] for i in issues)


def test_ingest_workflow_writes_summary_matching_ground_truth(ray_session, synth, tmp_path):
    root = synth["root"] / "coco"
    anns = coco_layout(str(root))
    with start_run("ingest", root=str(tmp_path / "runs"), seed=0, argv=[]) as run:
        result = ingest_coco(run, anns, str(root / "images"))
    summ = {r["split"]: r for r in read_table(run.root, run.id, "dataset_summary").to_pylist()}
    for split, path in anns.items():
        gt = json.loads(open(path).read())
        assert summ[split]["images"] == len(gt["images"])
        assert summ[split]["annotations"] == len(gt["annotations"])
        assert summ[split]["crowd"] == sum(a["iscrowd"] for a in gt["annotations"])
    classes = read_table(run.root, run.id, "class_counts").to_pylist()
    assert sum(c["instances"] for c in classes) == sum(r["annotations"] - r["crowd"] for r in summ.values())
    assert result["images_failed"] == 0
    assert run.manifest["dataset"]["combined"] and set(run.manifest["dataset"]["splits"]) == set(anns)


def test_coco_ingest_from_s3(ray_session, synth, s3_bucket):
    storage.upload_tree(str(synth["root"] / "coco"), s3_bucket + "/ds/coco")
    anns = coco_layout(s3_bucket + "/ds/coco")
    rows = read_coco(anns["train"], s3_bucket + "/ds/coco/images", split="train").take_all()
    local = json.loads((synth["root"] / "coco" / "annotations" / "instances_train.json").read_text())
    assert len(rows) == len(local["images"]) and all(r["ok"] for r in rows)
    first = min(rows, key=lambda r: r["image_id"])
    ref = cv2.cvtColor(cv2.imread(str(synth["root"] / "coco" / "images" / first["file_name"])), cv2.COLOR_BGR2RGB)
    assert np.array_equal(first["image"], ref)


def test_mot_sequence_frames_in_order_with_timestamps(ray_session, synth):
    seq = synth["mot"]["sequences"][0]
    seq_dir = storage.join(synth["mot"]["root"], "SYN-01")
    rows = read_mot_sequence(seq_dir).take_all()
    assert [r["frame"] for r in rows] == list(range(1, 9))
    fps = rows[1]["timestamp"] - rows[0]["timestamp"]
    assert fps > 0 and all(abs(r["timestamp"] - (r["frame"] - 1) * fps) < 1e-9 for r in rows)
    assert all(r["ok"] and r["image"].shape == (64, 64, 3) for r in rows)
    assert seq  # generator reported the sequence


def test_video_frames_in_order(ray_session, synth):
    mp4 = storage.list_files(storage.join(synth["mot"]["root"], "SYN-01"), suffix=".mp4")
    rows = read_video(mp4).take_all()
    assert [r["frame"] for r in rows] == list(range(1, 9))
    assert rows[0]["image"].shape == (64, 64, 3)
