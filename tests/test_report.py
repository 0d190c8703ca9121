"""`cvray eval --save` + `cvray report`: one self-contained HTML page, rendered in headless Chromium."""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from cvray.cli.main import main
from cvray.io import storage


def _fake_predictions(gt: dict, seed: int = 0) -> list[dict]:
    """GT boxes jittered, some relabelled, some dropped, plus background boxes: every error type."""
    rng = np.random.default_rng(seed)
    cats = [c["id"] for c in gt["categories"]]
    out = []
    for a in gt["annotations"]:
        if a.get("iscrowd"):
            continue
        u = rng.random()
        if u < 0.15:
            continue                                      # missed
        x, y, w, h = a["bbox"]
        if u < 0.3:
            x, y = x + 0.6 * w, y                          # localization
        cat = a["category_id"] if u > 0.4 or u < 0.3 else int(rng.choice([c for c in cats if c != a["category_id"]]))
        out.append({"image_id": a["image_id"], "category_id": cat, "bbox": [x, y, w, h],
                    "score": float(rng.uniform(0.3, 1.0))})
    for im in gt["images"]:
        out.append({"image_id": im["id"], "category_id": cats[0], "bbox": [1, 1, 6, 6],
                    "score": float(rng.uniform(0, 0.5))})  # background
    return out


@pytest.fixture(scope="module")
def eval_run(tmp_path_factory):
    from cvray.data.synth import make_coco

    tmp = tmp_path_factory.mktemp("report")
    ds = make_coco(tmp, 6, seed=1, image_size=(96, 96))
    gt_path = ds["annotations"]["train"]  # 6 images all land in train
    gt = json.loads(open(gt_path).read())
    pred_path = tmp / "pred.json"
    pred_path.write_text(json.dumps(_fake_predictions(gt)))
    return tmp, gt_path, pred_path


def test_report_is_self_contained_and_matches_tables(eval_run, capsys):
    tmp, gt_path, pred_path = eval_run
    root = str(tmp / "runs")
    assert main(["eval", "--gt", gt_path, "--pred", str(pred_path), "--save", "--root", root, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    run_id = out["details"]["run_id"]
    run_uri = storage.join(root, run_id)
    # failure overlays were rendered from the dataset's images
    fails = storage.list_files(storage.join(run_uri, "artifacts", "failures"))
    assert fails and {f.split("/")[-2] for f in fails} >= {"missed", "background"}
    html_out = tmp / "report.html"
    assert main(["report", run_id, "--root", root, "--out", str(html_out), "--json"]) == 0
    page = html_out.read_text()
    # self-contained: every image inlined, no external resource
    srcs = re.findall(r'src="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r'(href|src)="https?://', page)
    for section in ("COCO summary", "Per-class AP", "Error buckets", "Confusion matrix", "PR curves per class",
                    "Failure gallery"):
        assert section in page
    assert f"{out['AP']:.4f}" in page and f"{out['AP50']:.4f}" in page
    summary = storage.read_table_dir(storage.join(run_uri, "tables", "error_summary")).to_pylist()
    for r in summary:
        assert f"<td class=l>{r['type']}</td><td>{r['count']}</td><td>{r['dAP']:.4f}</td>" in page
    assert storage.exists(storage.join(run_uri, "artifacts", "report.html"))


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def test_report_renders_in_headless_chromium(eval_run, tmp_path, capsys):
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium); the HTML checks above still ran")
    tmp, gt_path, pred_path = eval_run
    root = str(tmp / "runs2")
    assert main(["eval", "--gt", gt_path, "--pred", str(pred_path), "--save", "--root", root, "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out)["details"]["run_id"]
    page = tmp_path / "r.html"
    assert main(["report", run_id, "--root", root, "--out", str(page), "--json"]) == 0
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "shot.png"
    subprocess.run([exe, *flags, f"--screenshot={shot}", "--window-size=1200,2000", page.as_uri()],
                   capture_output=True, timeout=120, check=False)
    assert shot.exists(), "chromium wrote no screenshot"
    import cv2

    img = cv2.imread(str(shot))
    assert img is not None and img.shape[:2] == (2000, 1200)
    assert img.std() > 10  # text, tables and plots drawn, not a blank page
    dom = subprocess.run([exe, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    assert "Per-class AP" in dom and dom.count("<img") >= 5


def test_report_of_a_predict_run_shows_predictions_and_issues(tmp_path):
    from cvray.predict.records import Detections, detections_to_table
    from cvray.report.html import build_report
    from cvray.runs import start_run

    with start_run("predict", root=str(tmp_path)) as run:
        recs = [Detections(1, 20, 20, [[0, 0, 5, 5], [1, 1, 9, 9]], [0.9, 0.2], [3, 7]),
                Detections(2, 20, 20, [[2, 2, 6, 6]], [0.5], [3])]
        run.write_table("predictions", detections_to_table(recs), part="part-000000")
        run.add_issues([{"stage": "predict", "rule": "image.unreadable", "severity": "error",
                         "file": "bad.jpg", "image_id": 3, "message": "bad.jpg: could not decode image"}])
        run.summary.update(images=3, prediction_rows=2, issue_rows=1)
    page = build_report(run.uri)
    assert "<h2>Predictions</h2>" in page
    assert "<td class=l>2</td><td>3</td><td>1.5000</td><td>0</td>" in page  # images, detections, per image, masks
    assert "Issues (1)" in page and "bad.jpg: could not decode image" in page
