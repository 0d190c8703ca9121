"""Issue 18 items 14 and 15: a user's mistake is one line naming the input, exit 2 -- never
internals (ArrowInvalid, IndexError, a raw pydantic error) and never a silent success."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cvray.cli.main import main


def _coco(tmp_path: Path, n=2) -> Path:
    doc = {"images": [{"id": i, "file_name": f"{i:03d}.jpg", "width": 50, "height": 40} for i in range(1, n + 1)],
           "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [5, 5, 10, 10], "area": 100.0,
                            "iscrowd": 0} for i in range(1, n + 1)],
           "categories": [{"id": 1, "name": "a"}]}
    f = tmp_path / "instances_val.json"
    f.write_text(json.dumps(doc))
    return f


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


def test_card_missing_images_folder_exits_2(tmp_path, capsys):
    gt = _coco(tmp_path)
    rc = main(["data", "card", str(gt), "--images", str(tmp_path / "nonexistent"), "--out", str(tmp_path / "card"),
               "--root", str(tmp_path / "runs")])
    line = _one_error_line(capsys)
    assert rc == 2
    assert "nonexistent" in line
    assert not (tmp_path / "card").exists()
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


# --- item 15: user mistakes print one line naming the input, not internals ---------------------


def _not_parquet(tmp_path) -> Path:
    f = tmp_path / "det.parquet"
    f.write_text("frame,id,x,y,w,h\n1,-1,1,2,3,4\n")
    return f


def test_eval_pred_not_parquet_is_one_line_exit_2(tmp_path, capsys):
    gt, pred = _coco(tmp_path), _not_parquet(tmp_path)
    rc = main(["eval", "--gt", str(gt), "--pred", str(pred), "--root", str(tmp_path / "runs")])
    line = _one_error_line(capsys)
    assert rc == 2
    assert f"{pred}: not a Parquet file" in line and "<Buffer>" not in line and "ArrowInvalid" not in line


def test_eval_pred_folder_with_corrupt_part(tmp_path, capsys):
    gt = _coco(tmp_path)
    parts = tmp_path / "run" / "tables" / "predictions"
    parts.mkdir(parents=True)
    (parts / "part-0.parquet").write_bytes(b"PAR1 not really")
    rc = main(["eval", "--gt", str(gt), "--pred", str(tmp_path / "run"), "--root", str(tmp_path / "runs")])
    line = _one_error_line(capsys)
    assert rc == 2
    assert "part-0.parquet: not a Parquet file" in line and "<Buffer>" not in line


def test_track_det_not_parquet_is_one_line(tmp_path, capsys):
    det = _not_parquet(tmp_path)
    rc = main(["track", "--det", str(det), "--out", str(tmp_path / "o"), "--root", str(tmp_path / "runs")])
    line = _one_error_line(capsys)
    assert rc != 0
    assert f"{det}: not a Parquet file" in line and "<Buffer>" not in line and "ArrowInvalid" not in line


def test_table_dir_corrupt_part_names_it(tmp_path):
    from cvray.io import storage

    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "part-0.parquet").write_text("{}")
    with pytest.raises(storage.StorageError, match=r"part-0\.parquet: not a Parquet file"):
        storage.read_table_dir(str(tmp_path / "t"))


def test_eval_three_number_bbox_names_the_record(tmp_path, capsys):
    gt = _coco(tmp_path)
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [5, 5, 10, 10], "score": 0.9},
                                {"image_id": 2, "category_id": 1, "bbox": [5, 5, 10], "score": 0.8}]))
    rc = main(["eval", "--gt", str(gt), "--pred", str(pred), "--root", str(tmp_path / "runs")])
    line = _one_error_line(capsys)
    assert rc == 2
    assert "record #1" in line and str(pred) in line and "IndexError" not in line


def _images(tmp_path) -> Path:
    import cv2
    import numpy as np

    d = tmp_path / "imgs"
    d.mkdir()
    cv2.imwrite(str(d / "a.jpg"), np.zeros((8, 8, 3), np.uint8))
    return d


@pytest.mark.parametrize("spec", ["nonexistent_run", "20260101-120000-predict-abcd", "runs/nope"])
def test_predict_unknown_model_says_what_model_accepts(tmp_path, capsys, spec):
    rc = main(["predict", "--model", spec, "--input", str(_images(tmp_path)), "--root", str(tmp_path / "runs")])
    line = _one_error_line(capsys)
    assert rc == 2
    assert f"--model {spec}" in line and "training run folder" in line and "fasterrcnn" in line
    assert "validation error" not in line and "pydantic" not in line and "literal_error" not in line


def test_predict_run_folder_without_manifest(tmp_path, capsys):
    (tmp_path / "notarun").mkdir()
    rc = main(["predict", "--model", str(tmp_path / "notarun"), "--input", str(_images(tmp_path)),
               "--root", str(tmp_path / "runs")])
    line = _one_error_line(capsys)
    assert rc == 2 and "without manifest.json" in line


def test_predict_unknown_backbone_lists_backbones(tmp_path, capsys):
    rc = main(["predict", "--model", "fasterrcnn:resnet9000", "--input", str(_images(tmp_path)),
               "--root", str(tmp_path / "runs")])
    line = _one_error_line(capsys)
    assert rc == 2 and "resnet9000" in line and "mobilenet_v3_large_fpn" in line


def test_track_video_arch_without_categories_names_the_flag(tmp_path, capsys):
    sys_path_helpers()
    from predict_helpers import write_video

    video = write_video(tmp_path / "clip.mp4", 3)
    rc = main(["track", "--video", str(video), "--model", "fasterrcnn", "--out", str(tmp_path / "o"),
               "--root", str(tmp_path / "runs")])
    line = _one_error_line(capsys)
    assert rc == 2 and "--categories" in line and "num_classes is not set" not in line


@pytest.mark.parametrize("kind", ["missing", "not_a_video"])
def test_track_bad_video_fails_before_the_model(tmp_path, capsys, monkeypatch, kind):
    import cvray.models.base as base

    def boom(*a, **k):
        raise AssertionError("the model was built before the video was checked")

    monkeypatch.setattr(base, "build_model", boom)
    video = tmp_path / "clip.mp4"
    if kind == "not_a_video":
        video.write_text("not a video")
    rc = main(["track", "--video", str(video), "--model", "fasterrcnn", "predict.model.num_classes=2",
               "--out", str(tmp_path / "o"), "--root", str(tmp_path / "runs")])
    line = _one_error_line(capsys)
    assert rc == 2 and str(video) in line


def sys_path_helpers() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))


def test_convert_folder_to_yolo_says_it_needs_a_coco_json(tmp_path, capsys):
    seq = tmp_path / "mot" / "seq1"
    (seq / "gt").mkdir(parents=True)
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=seq1\nframeRate=10\nseqLength=2\nimWidth=50\nimHeight=40\n")
    (seq / "gt" / "gt.txt").write_text("1,1,5,5,10,10,1,1,1\n")
    rc = main(["data", "convert", str(tmp_path / "mot"), "--to", "yolo", "--out", str(tmp_path / "y"),
               "--root", str(tmp_path / "runs")])
    line = _one_error_line(capsys)
    assert rc == 2 and str(tmp_path / "mot") in line and "COCO JSON" in line and "--to coco" in line
    assert "is a directory" not in line.lower().replace("is a folder", "")
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_convert_json_to_coco_says_it_needs_a_folder(tmp_path, capsys):
    gt = _coco(tmp_path)
    rc = main(["data", "convert", str(gt), "--to", "coco", "--out", str(tmp_path / "c.json"),
               "--root", str(tmp_path / "runs")])
    line = _one_error_line(capsys)
    assert rc == 2 and "already COCO" in line
