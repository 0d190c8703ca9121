"""``cvray validate`` and ``cvray data card/split/convert``: exit codes, JSON output, run tables."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from _validate_corpus import build_defect_corpus

from cvray.cli.main import main
from cvray.data.synth import make_coco
from cvray.runs import read_table


def _json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_validate_exit_codes_and_issue_table(tmp_path, capsys):
    c = build_defect_corpus(tmp_path / "d")
    files = [c["annotations"][s] for s in ("train", "val", "test")]
    root = str(tmp_path / "runs")
    rc = main(["validate", *files, "--images", c["images"], "--local", "--json", "--root", root])
    out = _json(capsys)
    assert rc == 1 and not out["passed"] and out["issues"]["error"] > 20
    issues = read_table(root, out["run"], "issues").to_pylist()
    rules = {r["rule"] for r in issues}
    assert {"image.truncated", "box.normalized_coordinates", "leak.near_duplicate",
            "mask.rle_size_mismatch", "schema.missing_category"} <= rules
    assert all(r["stage"] == "validate" and r["message"] for r in issues)
    pairs = read_table(root, out["run"], "leakage_pairs").to_pylist()
    assert any(p["cross_split"] for p in pairs)
    # a high enough threshold turns the same errors into a pass
    rc = main(["validate", *files, "--images", c["images"], "--local", "--json", "--root", root,
               "--max-errors", "100000"])
    assert rc == 0 and _json(capsys)["passed"]


def test_validate_clean_on_ray(tmp_path, capsys, ray_session):
    info = make_coco(tmp_path, n_images=12, seed=1, image_size=(64, 64))
    root = str(tmp_path / "runs")
    # dotted overrides go with the positionals (argparse cannot take them after the flags)
    rc = main(["validate", *info["annotations"].values(), "validation.phash_threshold=3",
               "--images", info["images_dir"], "--json", "--root", root])
    out = _json(capsys)
    assert rc == 0 and out["issues"]["error"] == 0 and out["images_decoded"] == 12
    images = pq.read_table(Path(root) / out["run"] / "tables" / "images")
    assert images.num_rows == 12 and set(images.column("format").to_pylist()) == {"JPEG"}


def test_usage_errors_exit_2(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.json"), "--images", str(tmp_path)]) == 2
    assert main(["validate", "--images", str(tmp_path)]) == 2
    assert main(["data", "split", "x.json", "--out", str(tmp_path), "--fractions", "a=b"]) == 2


def test_data_card_split_convert(tmp_path, capsys):
    info = make_coco(tmp_path, n_images=16, seed=2, image_size=(64, 64))
    files = list(info["annotations"].values())
    root = ["--root", str(tmp_path / "runs"), "--json"]
    assert main(["data", "card", *files, "--images", info["images_dir"], "--out",
                 str(tmp_path / "card"), "--name", "t", *root]) == 0
    card = json.loads((tmp_path / "card" / "card.json").read_text())
    assert card["splits"]["train"]["images"] == json.loads(Path(files[0]).read_text())["images"].__len__()
    assert card["validation"]["issues"]["error"] == 0
    assert (tmp_path / "card" / "overlays" / "val.png").stat().st_size > 1000
    capsys.readouterr()
    assert main(["data", "split", *files, "--by", "group", "--out", str(tmp_path / "split"),
                 "--fractions", "train=0.5,val=0.5", *root]) == 0
    out = _json(capsys)
    assert set(out["splits"]) == {"train", "val"}
    assert sum(v["images"] for v in out["splits"].values()) == 16
    assert main(["data", "convert", files[0], "--to", "yolo", "--out", str(tmp_path / "yolo"), *root]) == 0
    assert (tmp_path / "yolo" / "data.yaml").exists()
    assert main(["data", "convert", str(tmp_path / "yolo"), "--to", "coco", "--out",
                 str(tmp_path / "back.json"), *root]) == 0
    assert main(["data", "convert", str(tmp_path / "nothing"), "--to", "coco", "--out",
                 str(tmp_path / "x.json"), *root]) == 2
