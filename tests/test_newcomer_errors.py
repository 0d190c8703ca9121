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
