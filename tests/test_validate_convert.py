"""Converters: COCO -> YOLO -> COCO and MOT -> COCO video -> MOT round trips are exact."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cvray.data.synth import make_coco, make_mot
from cvray.validate.convert import (coco_to_mot, coco_to_yolo, mot_to_coco, read_mot_txt,
                                    yolo_to_coco)


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    return make_coco(tmp_path_factory.mktemp("c"), n_images=12, seed=4, image_size=(80, 112))


def test_coco_yolo_round_trip_exact(coco, tmp_path):
    doc = json.loads(Path(coco["annotations"]["train"]).read_text())
    res = coco_to_yolo(doc, str(tmp_path / "yolo"))
    crowd = [a["id"] for a in doc["annotations"] if a["iscrowd"]]
    assert sorted(s["annotation_id"] for s in res["skipped"]) == sorted(crowd)
    # the normalised values are the pixel values divided by the image size
    img = doc["images"][0]
    lines = (tmp_path / "yolo" / "labels" / (img["file_name"][:-4] + ".txt")).read_text().split("\n")
    first = [a for a in doc["annotations"] if a["image_id"] == img["id"] and not a["iscrowd"]][0]
    c, cx, cy, w, h = lines[0].split()
    x, y, bw, bh = first["bbox"]
    assert int(c) == sorted(cat["id"] for cat in doc["categories"]).index(first["category_id"])
    assert float(cx) == pytest.approx((x + bw / 2) / img["width"], abs=1e-15)
    assert float(h) == pytest.approx(bh / img["height"], abs=1e-15)
    back = yolo_to_coco(str(tmp_path / "yolo"))
    want = [(a["id"], a["image_id"], a["category_id"], a["bbox"]) for a in doc["annotations"]
            if not a["iscrowd"]]
    got = [(a["id"], a["image_id"], a["category_id"], a["bbox"]) for a in back["annotations"]]
    assert got == want  # exact equality of floats
    assert [i["id"] for i in back["images"]] == [i["id"] for i in doc["images"]]


def test_yolo_to_coco_without_metadata_reads_image_sizes(coco, tmp_path):
    doc = json.loads(Path(coco["annotations"]["train"]).read_text())
    coco_to_yolo(doc, str(tmp_path / "yolo"))
    (tmp_path / "yolo" / "cvray_yolo.json").unlink()
    back = yolo_to_coco(str(tmp_path / "yolo"), coco["images_dir"])
    assert {(i["width"], i["height"]) for i in back["images"]} == {(112, 80)}
    assert [c["name"] for c in back["categories"]] == [c["name"] for c in doc["categories"]]
    n = sum(1 for a in doc["annotations"] if not a["iscrowd"])
    assert len(back["annotations"]) == n


def test_mot_coco_round_trip_exact(tmp_path):
    info = make_mot(tmp_path, n_videos=2, seed=1, n_frames=15, n_objects=4)
    doc = mot_to_coco(str(tmp_path / "mot"))
    assert [v["name"] for v in doc["videos"]] == ["SYN-01", "SYN-02"]
    seq = info["sequences"][0]
    gt = read_mot_txt(Path(seq["gt"]).read_text())
    # explicit conventions: 1-based MOT pixels/frames vs 0-based COCO
    a0 = doc["annotations"][0]
    img0 = next(i for i in doc["images"] if i["id"] == a0["image_id"])
    assert img0["frame_id"] + 1 == gt[0, 0] and a0["track_id"] == gt[0, 1]
    assert a0["bbox"] == [gt[0, 2] - 1, gt[0, 3] - 1, gt[0, 4], gt[0, 5]]
    assert img0["file_name"] == f"SYN-01/img1/{int(gt[0, 0]):06d}.jpg"
    coco_to_mot(doc, str(tmp_path / "back"))
    for s in info["sequences"]:
        orig = read_mot_txt(Path(s["gt"]).read_text())
        again = read_mot_txt((tmp_path / "back" / s["name"] / "gt" / "gt.txt").read_text())
        assert np.array_equal(orig, again)
        assert (tmp_path / "back" / s["name"] / "seqinfo.ini").read_text().replace(" ", "") \
            .count("seqLength=15") == 1
    # and back again: COCO -> MOT -> COCO gives the same document
    assert mot_to_coco(str(tmp_path / "back")) == {**doc, "images": doc["images"]}


def test_bad_mot_line_names_the_file():
    with pytest.raises(ValueError, match="gt.txt: line 2"):
        read_mot_txt("1,1,1,1,5,5,1,1,1\n1,x,2\n", "gt.txt")
