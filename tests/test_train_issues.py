"""Training's issue rows come from the one factory (cvray.runs.issues.issue) and its catalogue:
an unreadable image and an invalid annotation are skipped as Issue rows with the catalogue's
severity, never crash the loop and never vanish."""
from __future__ import annotations

import numpy as np
from PIL import Image

from cvray.runs.issues import RULES, Issue, issues_to_table
from cvray.train.data import CategoryMap, samples


def test_bad_records_become_catalogued_issue_rows(tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "ok.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "empty.png").write_bytes(b"")
    box = {"id": 7, "category_id": 1, "bbox": [1, 1, 4, 4], "iscrowd": 0,
           "segmentation": [[1, 1, 5, 1, 5, 5, 1, 5]]}
    recs = [
        {"image_id": 1, "file_name": "ok.png", "height": 8, "width": 8, "annotations": [box]},
        {"image_id": 2, "file_name": "broken.png", "height": 8, "width": 8, "annotations": []},
        {"image_id": 3, "file_name": "empty.png", "height": 8, "width": 8, "annotations": []},
        {"image_id": 4, "file_name": "ok.png", "height": 8, "width": 8,
         "annotations": [{**box, "id": 9, "category_id": 42}]},
        {"image_id": 5, "file_name": "ok.png", "height": 9, "width": 8, "annotations": []},
    ]
    cats = CategoryMap((1,), ("square",))
    issues: list = []
    out = list(samples([(r, None) for r in recs], str(tmp_path), cats, task="instance", issues=issues))
    assert [s.record["image_id"] for s in out] == [1]
    assert all(isinstance(i, Issue) and i.stage == "train" for i in issues)
    got = [(i.rule, i.image_id, i.annotation_id) for i in issues]
    assert got == [("image.unreadable", 2, None), ("image.zero_byte", 3, None), ("annotation.invalid", 4, 9),
                   ("image.size_mismatch", 5, None)]
    assert [i.severity for i in issues] == [RULES[r].severity for r, _, _ in got] == ["error"] * 4
    assert issues[0].file == "broken.png" and "42" in issues[2].message
    table = issues_to_table(issues)
    assert table.column("severity").to_pylist() == ["error"] * 4
