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
