"""Issue 18, data tools: top-level JSON that is not a COCO object is an error naming the file."""
from __future__ import annotations

import json

import pytest

from cvray.cli.main import main
from cvray.validate.annotations import validate_annotations_file


def _json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.parametrize("content", ["null", "[]", '"str"', "42", "{}"])
def test_non_object_top_level_is_an_error_naming_the_file(tmp_path, capsys, content):
    f = tmp_path / "instances_val.json"
    f.write_text(content)
    report = validate_annotations_file(str(f))
    errors = [i for i in report.issues if i.severity == "error"]
    assert errors and all(str(f) in i.message for i in errors)
    (tmp_path / "images").mkdir()
    rc = main(["validate", str(f), "--images", str(tmp_path / "images"), "--local", "--json",
               "--root", str(tmp_path / "runs")])
    out = _json(capsys)
    assert rc == 1 and not out["passed"]
