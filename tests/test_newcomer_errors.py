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
