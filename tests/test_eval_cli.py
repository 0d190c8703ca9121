"""`cvray eval` end to end: JSON and Parquet predictions reproduce the COCO oracle."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cvray.cli.main import main
from cvray.evaluate.coco import STAT_KEYS
from cvray.predict.records import Detections, detections_to_table


def _records_from_coco_results(gt: dict, results: list[dict]) -> list[Detections]:
    size = {im["id"]: (im["height"], im["width"]) for im in gt["images"]}
    per: dict[int, list[dict]] = {i: [] for i in size}
    for r in results:
        per[r["image_id"]].append(r)
    out = []
    for i, rs in per.items():
        from pycocotools import mask as mask_utils

        b = np.array([r["bbox"] if "bbox" in r else mask_utils.toBbox(r["segmentation"]) for r in rs],
                     float).reshape(-1, 4)
        b[:, 2:] += b[:, :2]
        masks = [r["segmentation"] for r in rs] if rs and "segmentation" in rs[0] else None
        out.append(Detections(i, *size[i], b, [r["score"] for r in rs], [r["category_id"] for r in rs],
                              masks=masks))
    return out


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_cli_json_and_parquet_match_oracle(shared_dir, tmp_path, capsys, iou_type):
    ref = shared_dir / "refdata" / "coco"
    gt_path = ref / "instances_val2014_100.json"
    pred_path = ref / f"instances_val2014_fake{iou_type}100_results.json"
    expected = json.loads((ref / "expected_stats.json").read_text())[iou_type]

    rc = main(["eval", "--gt", str(gt_path), "--pred", str(pred_path), "--iou-type", iou_type, "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert [k for k in out if k != "details"] == list(STAT_KEYS)
    np.testing.assert_allclose([out[k] for k in STAT_KEYS], expected, rtol=0, atol=1e-9)

    import pyarrow.parquet as pq

    gt = json.loads(gt_path.read_text())
    table = detections_to_table(_records_from_coco_results(gt, json.loads(pred_path.read_text())))
    pq.write_table(table, tmp_path / "pred.parquet")
    rc = main(["eval", "--gt", str(gt_path), "--pred", str(tmp_path / "pred.parquet"),
               "--iou-type", iou_type, "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose([out[k] for k in STAT_KEYS], expected, rtol=0, atol=1e-9)


def test_cli_table_output_and_errors(shared_dir, tmp_path, capsys):
    ref = shared_dir / "refdata" / "coco"
    rc = main(["eval", "--gt", str(ref / "instances_val2014_100.json"),
               "--pred", str(ref / "instances_val2014_fakebbox100_results.json")])
    assert rc == 0
    text = capsys.readouterr().out
    assert "AP50" in text and "0.6970" in text  # published 0.697
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"image_id": -5, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}]))
    rc = main(["eval", "--gt", str(ref / "instances_val2014_100.json"), "--pred", str(bad), "--json"])
    assert rc == 2
    assert "image_id=-5" in capsys.readouterr().err


def test_cli_reads_a_predict_run_folder(shared_dir, tmp_path, capsys):
    from cvray.runs import start_run

    ref = shared_dir / "refdata" / "coco"
    gt = json.loads((ref / "instances_val2014_100.json").read_text())
    res = json.loads((ref / "instances_val2014_fakebbox100_results.json").read_text())
    recs = _records_from_coco_results(gt, res)
    with start_run("predict", root=str(tmp_path)) as run:
        run.write_table("predictions", detections_to_table(recs[:50]), part="part-000000")
        run.write_table("predictions", detections_to_table(recs[50:]), part="part-000001")
    rc = main(["eval", "--gt", str(ref / "instances_val2014_100.json"), "--pred", run.uri, "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    expected = json.loads((ref / "expected_stats.json").read_text())["bbox"]
    np.testing.assert_allclose([out[k] for k in STAT_KEYS], expected, rtol=0, atol=1e-9)
