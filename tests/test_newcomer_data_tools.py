"""Issue 18 item 13: ``data split`` / ``data convert`` / ``data synth`` never drop or corrupt
records silently: what they skip is counted by reason in the summary and is an issue row."""
from __future__ import annotations

import json
from pathlib import Path

from cvray.cli.main import main
from cvray.runs import read_table


def _json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _doc(n_images=4, group=None):
    images = [{"id": i, "file_name": f"{i:03d}.jpg", "width": 100, "height": 80,
               **({"video_id": i % group} if group else {})} for i in range(1, n_images + 1)]
    anns = [{"id": k, "image_id": 1 + (k - 1) % n_images, "category_id": 1, "bbox": [10, 10, 20, 20],
             "area": 400.0, "iscrowd": 0} for k in range(1, 2 * n_images + 1)]
    return {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}


def _defective(tmp_path) -> Path:
    doc = _doc()
    anns = doc["annotations"]
    anns.append({"id": 100, "image_id": 999, "category_id": 1, "bbox": [1, 1, 2, 2], "area": 4.0, "iscrowd": 0})
    anns.append({"id": 101, "image_id": 1, "category_id": 1, "bbox": [float("nan"), 1, 2, 2], "area": 4.0,
                 "iscrowd": 0})
    anns.append({"id": 1, "image_id": 2, "category_id": 1, "bbox": [1, 1, 2, 2], "area": 4.0, "iscrowd": 0})
    anns.append({"id": 102, "image_id": 2, "category_id": 77, "bbox": [1, 1, 2, 2], "area": 4.0, "iscrowd": 0})
    anns.append({"id": 103, "image_id": 3, "category_id": 1, "bbox": [5, 5, -4, 2], "area": 8.0, "iscrowd": 0})
    f = tmp_path / "instances_train.json"
    f.write_text(json.dumps(doc))  # json writes NaN for the nan box, as a broken exporter would
    return f


EXPECTED = {"schema.missing_image": 1, "box.non_finite": 1, "schema.duplicate_id": 1,
            "schema.missing_category": 1, "box.non_positive": 1}


def _skip_rows(tmp_path, run_id):
    rows = read_table(str(tmp_path / "runs"), run_id, "issues").to_pylist()
    return {r["rule"]: r for r in rows}


def test_split_reports_every_skipped_annotation(tmp_path, capsys):
    f = _defective(tmp_path)
    assert main(["data", "split", str(f), "--out", str(tmp_path / "s"), "--fractions", "train=0.5,val=0.5",
                 "--root", str(tmp_path / "runs"), "--json"]) == 0
    out = _json(capsys)
    assert out["skipped"]["annotations"] == 5 and out["skipped_reasons"] == EXPECTED
    written = [json.loads((tmp_path / "s" / f"instances_{s}.json").read_text()) for s in ("train", "val")]
    ids = sorted(a["id"] for d in written for a in d["annotations"])
    assert ids == list(range(1, 9))  # the sound 8, the first id=1 only
    rows = _skip_rows(tmp_path, out["run"])
    assert set(EXPECTED) <= set(rows) and rows["schema.missing_image"]["annotation_id"] == 100


def test_convert_to_yolo_writes_what_it_counts(tmp_path, capsys):
    f = _defective(tmp_path)
    assert main(["data", "convert", str(f), "--to", "yolo", "--out", str(tmp_path / "y"),
                 "--root", str(tmp_path / "runs"), "--json"]) == 0  # no KeyError: 77
    out = _json(capsys)
    lines = [ln for p in (tmp_path / "y" / "labels").glob("*.txt") for ln in p.read_text().splitlines()]
    assert out["labels"] == len(lines) == 8
    assert all("nan" not in ln and float(ln.split()[3]) > 0 for ln in lines)
    assert out["skipped"]["annotations"] == 5 and out["skipped_reasons"] == EXPECTED
    assert set(EXPECTED) <= set(_skip_rows(tmp_path, out["run"]))
    yaml_text = (tmp_path / "y" / "data.yaml").read_text()
    import yaml

    data = yaml.safe_load(yaml_text)
    assert {"path", "train", "val", "nc", "names"} <= set(data) and data["nc"] == 2


def test_convert_folder_without_mot_sequences_is_an_input_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc = main(["data", "convert", str(tmp_path / "empty"), "--to", "coco", "--out", str(tmp_path / "c.json"),
               "--root", str(tmp_path / "runs")])
    assert rc == 2 and str(tmp_path / "empty") in capsys.readouterr().err
    assert not (tmp_path / "c.json").exists()


def test_split_group_key_nobody_has_and_empty_split(tmp_path, capsys):
    f = tmp_path / "instances_train.json"
    f.write_text(json.dumps(_doc(n_images=6, group=3)))  # 3 videos
    root = ["--root", str(tmp_path / "runs")]
    rc = main(["data", "split", str(f), "--out", str(tmp_path / "s"), "--group-key", "nokey", *root])
    assert rc == 2 and "nokey" in capsys.readouterr().err
    # 3 groups, 3 splits 0.7/0.15/0.15: test gets nothing -> said, as a warning row
    assert main(["data", "split", str(f), "--out", str(tmp_path / "s2"), "--json", *root]) == 0
    out = _json(capsys)
    empty = [s for s, v in out["splits"].items() if v["images"] == 0]
    assert empty and out["empty_splits"] == empty
    rows = [r for r in read_table(str(tmp_path / "runs"), out["run"], "issues").to_pylist()
            if r["rule"] == "split.empty"]
    assert len(rows) == len(empty) and rows[0]["severity"] == "warning"
    # no image carries any default group key: every image its own group, said as a warning
    f.write_text(json.dumps(_doc(n_images=6)))
    assert main(["data", "split", str(f), "--out", str(tmp_path / "s3"), "--json", *root]) == 0
    out = _json(capsys)
    rules = {r["rule"] for r in read_table(str(tmp_path / "runs"), out["run"], "issues").to_pylist()}
    assert "split.no_groups" in rules


def test_synth_into_a_used_folder_leaves_no_stale_images(tmp_path, capsys):
    out = tmp_path / "s"
    common = ["--videos", "0", "synth.image_size=[32,32]", "--root", str(tmp_path / "runs"), "--json"]
    assert main(["data", "synth", "--out", str(out), "--images", "6", *common]) == 0
    assert main(["data", "synth", "--out", str(out), "--images", "3", *common]) == 0
    files = {p.name for p in (out / "coco").rglob("*.jpg")}
    named = {Path(i["file_name"]).name for s in (out / "coco" / "annotations").glob("*.json")
             for i in json.loads(s.read_text())["images"]}
    assert files == named and len(files) == 3
