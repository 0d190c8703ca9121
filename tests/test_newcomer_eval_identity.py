"""Issue 18 items 10 and 11: predictions keep the identity of their images.

11: file names of a folder input are relative to the folder, whatever form the folder was named in.
10: evaluation matches predictions to the ground truth by ``file_name`` when they carry it, says so
(``matched_by``) and refuses when names and ids disagree or no name is in the ground truth.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from cvray.predict.sources import list_units


def _jpg(path: Path) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((8, 8, 3), 127, np.uint8))


@pytest.mark.parametrize("form", ["relative", "relative_slash", "dot_relative", "absolute"])
def test_folder_file_names_relative_to_input(tmp_path, monkeypatch, form):
    _jpg(tmp_path / "pfolder" / "000005.jpg")
    _jpg(tmp_path / "pfolder" / "sub" / "000005.jpg")
    monkeypatch.chdir(tmp_path)
    uri = {"relative": "pfolder", "relative_slash": "pfolder/", "dot_relative": "./pfolder",
           "absolute": str(tmp_path / "pfolder")}[form]
    units = list_units(uri)
    names = sorted(u["file_name"] for u in units)
    assert names == ["000005.jpg", "sub/000005.jpg"]
    assert all(os.path.isabs(u["uri"]) for u in units)


# --- item 10: evaluation pairs predictions with GT images by file_name -------------------------

from cvray.cli.main import main  # noqa: E402
from cvray.predict.records import Detections, detections_to_table  # noqa: E402

BOX = [10.0, 10.0, 30.0, 40.0]  # xywh


def _gt(tmp_path, names, ids, fname="instances_val.json") -> Path:
    doc = {"images": [{"id": i, "file_name": n, "width": 64, "height": 64} for i, n in zip(ids, names)],
           "annotations": [{"id": k + 1, "image_id": i, "category_id": 1, "bbox": BOX, "area": BOX[2] * BOX[3],
                            "iscrowd": 0} for k, i in enumerate(ids)],
           "categories": [{"id": 1, "name": "a"}]}
    f = tmp_path / fname
    f.write_text(json.dumps(doc))
    return f


def _pred(tmp_path, names, ids=None) -> Path:
    """A predictions Parquet as `cvray predict` on a folder writes it: ids 1..N by sort order."""
    import pyarrow.parquet as pq

    ids = ids or list(range(1, len(names) + 1))
    x, y, w, h = BOX
    recs = [Detections(i, 64, 64, [[x, y, x + w, y + h]], [0.9], [1], file_name=n) for i, n in zip(ids, names)]
    f = tmp_path / "pred.parquet"
    pq.write_table(detections_to_table(recs), f)
    return f


def _eval(capsys, gt, pred):
    rc = main(["eval", "--gt", str(gt), "--pred", str(pred), "--json", "--root", str(gt.parent / "runs")])
    cap = capsys.readouterr()
    return rc, (json.loads(cap.out) if rc == 0 else None), cap.err


def test_predictions_of_another_split_are_refused(tmp_path, capsys):
    gt = _gt(tmp_path, ["val/a.jpg", "val/b.jpg", "val/c.jpg", "val/d.jpg"], [1, 2, 3, 4])
    pred = _pred(tmp_path, ["train/e.jpg", "train/f.jpg", "train/g.jpg", "train/h.jpg"])  # ids 1..4 too
    rc, out, err = _eval(capsys, gt, pred)
    assert rc == 2, err
    line = err.strip().splitlines()
    assert len(line) == 1
    assert str(pred) in line[0] and str(gt) in line[0] and "train/e.jpg" in line[0]


def test_matched_by_file_name_when_ids_differ(tmp_path, capsys):
    names = ["a.jpg", "b.jpg", "c.jpg"]
    gt = _gt(tmp_path, names, [101, 102, 103])  # the GT's own ids; a folder prediction numbers 1..3
    rc, out, err = _eval(capsys, gt, _pred(tmp_path, names))
    assert rc == 0, err
    assert out["details"]["matched_by"] == "file_name"
    assert out["details"]["matching"]["matched_images"] == 3
    assert out["AP"] == pytest.approx(1.0)


def test_names_and_ids_that_disagree_are_refused(tmp_path, capsys):
    gt = _gt(tmp_path, ["a.jpg", "b.jpg", "c.jpg"], [1, 2, 3])
    pred = _pred(tmp_path, ["b.jpg", "a.jpg", "c.jpg"])  # image_id 1 is b.jpg here, a.jpg in the GT
    rc, out, err = _eval(capsys, gt, pred)
    assert rc == 2
    assert "disagree" in err and "'b.jpg'" in err and "'a.jpg'" in err
    assert str(gt) in err and str(pred) in err


def test_images_not_in_gt_are_counted_not_scored(tmp_path, capsys):
    gt = _gt(tmp_path, ["a.jpg", "b.jpg"], [1, 2])
    rc, out, err = _eval(capsys, gt, _pred(tmp_path, ["a.jpg", "b.jpg", "z.jpg"]))
    assert rc == 0, err
    m = out["details"]["matching"]
    assert (m["matched_by"], m["matched_images"], m["pred_images_not_in_gt"]) == ("file_name", 2, 1)
    assert m["not_in_gt_example"] == "z.jpg"
    assert out["AP"] == pytest.approx(1.0)


def test_results_without_names_match_by_image_id(tmp_path, capsys):
    gt = _gt(tmp_path, ["a.jpg", "b.jpg"], [1, 2])
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps([{"image_id": i, "category_id": 1, "bbox": BOX, "score": 0.9} for i in (1, 2)]))
    rc, out, err = _eval(capsys, gt, pred)
    assert rc == 0, err
    assert out["details"]["matched_by"] == "image_id"
    assert out["AP"] == pytest.approx(1.0)


def test_split_folder_predictions_against_its_coco_names(tmp_path, capsys):
    """The newcomer's path: predict on images/val, evaluate against instances_val.json whose
    file names are relative to images/ -- refused, with the prefix and the way out named; the
    same predictions keyed to the GT's own names are scored on the right images."""
    import pyarrow.parquet as pq

    from cvray.data.synth import make_coco

    ds = make_coco(tmp_path / "data", 20, seed=2, image_size=(64, 64))
    val = json.loads(Path(ds["annotations"]["val"]).read_text())
    assert val["images"] and all(im["file_name"].startswith("val/") for im in val["images"])
    units = list_units(str(Path(ds["images_dir"]) / "val"))  # ids 1..N, names relative to images/val
    anns = {}
    for a in val["annotations"]:
        anns.setdefault(a["image_id"], []).append(a)
    by_name = {im["file_name"]: im for im in val["images"]}

    def records(prefix):
        out = []
        for u in units:
            im = by_name["val/" + u["file_name"]]
            boxes = [[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                     for a in anns.get(im["id"], [])]
            out.append(Detections(u["image_id"], im["height"], im["width"], boxes, [0.9] * len(boxes),
                                  [a["category_id"] for a in anns.get(im["id"], [])],
                                  file_name=prefix + u["file_name"]))
        return out

    pred = tmp_path / "pred.parquet"
    pq.write_table(detections_to_table(records("")), pred)
    rc, out, err = _eval(capsys, Path(ds["annotations"]["val"]), pred)
    assert rc == 2 and "folder prefix" in err and "--input" in err
    pq.write_table(detections_to_table(records("val/")), pred)
    rc, out, err = _eval(capsys, Path(ds["annotations"]["val"]), pred)
    assert rc == 0, err
    assert out["details"]["matched_by"] == "file_name"
    assert out["details"]["matching"]["matched_images"] == len(val["images"])
    assert out["AP50"] > 0.9  # the GT boxes themselves, on the right images
    rc, out, err = _eval(capsys, Path(ds["annotations"]["train"]), pred)  # another split's GT
    assert rc == 2 and "none of its" in err
