"""`cvray report` per stage (issue 18 item 9): a train run shows its validation AP, curves, per-class
AP, best checkpoint and git sha; a track run its per-sequence TrackEval + devkit metrics and a frame
strip of the review video; a card run its card and overlays; the demo's per-stage summary dicts
each in their own section; `cvray report RUN_A RUN_B` a comparison page. Rendered in headless
Chromium when it is installed: every section present, every <img> decoded, screenshots kept."""
from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cvray.cli.main import main
from cvray.io import storage

TINY_TRAIN = ["--no-ray", "train.optim.steps=[]", "train.tensorboard=false",
              "train.model.backbone=mobilenet_v3_large_fpn", "train.model.min_size=48", "train.model.max_size=48",
              "train.model.fpn_channels=32", "train.model.box_head_dim=64", "train.model.mask_head_dim=32",
              "train.model.mask_head_layers=1"]


def _cli(argv: list[str], capsys) -> dict:
    capsys.readouterr()
    rc = main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, (argv, err[-2000:])
    return json.loads(out)


def _table(run_uri: str, name: str) -> list[dict]:
    return storage.read_table_dir(storage.join(run_uri, "tables", name)).to_pylist()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Real runs, small and fast: two tiny CPU trainings (2 and 1 iterations), a rendered track
    run with ground truth, a dataset card run."""
    capsys = _Capture()
    tmp = tmp_path_factory.mktemp("report-stages")
    root = str(tmp / "runs")
    ds = tmp / "ds"
    with capsys:
        _cli(["data", "synth", "--out", str(ds), "--images", "10", "--videos", "1", "synth.image_size=[48,48]",
              "synth.frames=6", "--root", root], capsys)
        coco, mot = ds / "coco", ds / "mot"
        a = _cli(["train", "--dataset", str(coco), *TINY_TRAIN, "train.max_iter=2", "--root", root], capsys)
        b = _cli(["train", "--dataset", str(coco), *TINY_TRAIN, "train.max_iter=1", "seed=3", "--root", root],
                 capsys)
        t = _cli(["track", "--det", str(mot / "SYN-01" / "det" / "det.txt"), "--out", str(tmp / "tracks"),
                  "--render", "--root", root], capsys)
        anns = sorted(str(p) for p in (coco / "annotations").glob("instances_*.json"))
        c = _cli(["data", "card", *anns, "--images", str(coco / "images"), "--out", str(tmp / "card"),
                  "--no-validate", "--root", root], capsys)
    return {"tmp": tmp, "root": root, "train_a": a["run_uri"], "train_b": b["run_uri"],
            "track": storage.join(root, t["run_id"]), "card": storage.join(root, c["run"])}


class _Capture:
    """capsys for a module-scoped fixture: stdout/stderr captured with contextlib."""

    def __enter__(self):
        import contextlib
        import io

        self._out, self._err = io.StringIO(), io.StringIO()
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(contextlib.redirect_stdout(self._out))
        self._stack.enter_context(contextlib.redirect_stderr(self._err))
        return self

    def __exit__(self, *exc):
        self._stack.close()

    def readouterr(self):
        out, err = self._out.getvalue(), self._err.getvalue()
        self._out.seek(0), self._out.truncate()
        self._err.seek(0), self._err.truncate()
        return out, err


def _report(run_uri: str, tmp: Path, name: str, *extra: str) -> str:
    out = tmp / f"{name}.html"
    assert main(["report", run_uri, *extra, "--out", str(out), "--json"]) == 0
    return out.read_text()


def _imgs(page: str) -> list[tuple[str, bytes]]:
    return [(alt, base64.b64decode(data)) for alt, data in
            re.findall(r'<img alt="([^"]*)"[^>]*src="data:image/png;base64,([^"]+)"', page)]


def _png_size(data: bytes) -> tuple[int, int]:
    import cv2

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None, "an embedded image does not decode"
    return img.shape[1], img.shape[0]


def test_train_report_shows_validation_curves_per_class_and_git(runs, capsys):
    run = runs["train_a"]
    page = _report(run, runs["tmp"], "train")
    m = storage.read_json(storage.join(run, "manifest.json"))
    assert m["git"]["sha"][:12] in page  # was always empty: the code read git.commit
    last = max(_table(run, "eval_metrics"), key=lambda r: r["iteration"])
    keys = [k for k in ("bbox_AP", "bbox_AP50", "segm_AP", "segm_AP50") if last.get(k) is not None]
    assert f"<h3>Validation at iteration {last['iteration']}" in page
    row = "<td class=l>" + f"{last[keys[0]]:.4f}</td>" + "".join(f"<td>{last[k]:.4f}</td>" for k in keys[1:])
    assert row in page, row
    imgs = dict(_imgs(page))
    assert "training curves" in imgs and "learning curves" in imgs  # ours + the trainer's PNG
    w, h = _png_size(imgs["training curves"])
    assert w > 600 and h > 300  # a grid of panels: every loss part, lr, grad norm, val metrics
    for r in _table(run, "per_class_ap"):
        if r["iteration"] == last["iteration"]:
            assert f"<td class=l>{r['name']}</td><td>{r['category_id']}</td>" in page
    assert "best checkpoint <code>" in page and storage.join(run, "checkpoints", "best.pt") in page
    assert page.index("<h2 id=training>") < page.index("Resolved config")


def test_track_report_shows_per_sequence_metrics_devkit_and_video_frames(runs):
    run = runs["track"]
    page = _report(run, runs["tmp"], "track")
    metrics = {r["sequence"]: r for r in _table(run, "metrics")}
    comb = metrics["combined"]
    assert "<h2 id=tracking>Tracking</h2>" in page and "TrackEval 1.3" in page
    assert f"<td>{comb['HOTA']:.4f}</td>" in page and f"<td>{comb['IDF1']:.4f}</td>" in page
    assert "<th>devkit_MOTA</th>" in page and "<th>devkit_IDSW</th>" in page
    seq = _table(run, "sequences")[0]
    video = seq["review_video"]
    assert Path(video).exists()
    assert f'href="{Path(video).resolve().as_uri()}"' in page
    strips = [d for alt, d in _imgs(page) if alt.startswith("frames of")]
    assert strips, "no frame strip of the review video"
    w, h = _png_size(strips[0])
    assert w > 3 * h  # several frames side by side


def test_card_run_report_shows_card_and_overlays(runs):
    page = _report(runs["card"], runs["tmp"], "card")
    assert "<h2 id=dataset>Dataset</h2>" in page and "Dataset card" in page
    card = storage.read_bytes(storage.join(runs["card"], "artifacts", "card.md")).decode()
    first = next(line for line in card.splitlines() if line.strip())
    import html as _html

    assert _html.escape(first) in page
    overlays = [alt for alt, _ in _imgs(page) if alt.startswith("overlays/")]
    assert len(overlays) == len(storage.list_files(storage.join(runs["card"], "artifacts", "overlays")))


def test_demo_summary_is_read_per_stage(tmp_path):
    """The demo merges stages' keys flat (track's ``metrics`` overwrites train's); the report reads
    the per-stage dicts, so train's AP and track's HOTA both show, each in its section."""
    from cvray.data.summary import aggregate
    from cvray.report.html import build_report
    from cvray.runs import start_run

    with start_run("demo", root=str(tmp_path)) as run:
        stats = [{"split": "train", "image_id": i, "ok": True, "height": 48, "width": 48, "annotations": 2,
                  "crowd": 0, "small": 2, "medium": 0, "large": 0, "categories": json.dumps({"1": 1, "2": 1})}
                 for i in range(3)]
        summ, classes = aggregate(stats)
        run.write_table("dataset_summary", summ)
        run.write_table("class_counts", classes)
        run.summary.update({"metrics": {"HOTA": 11.5}, "iterations": 7,  # flat: the later stage won
                            "data": {"images": 3, "videos": 1},
                            "ingest": {"images": 3, "annotations": 6},
                            "train": {"iterations": 7, "bbox_AP": 0.4321, "best_checkpoint": "/x/best.pt"},
                            "track": {"sequences": 1, "HOTA": 12.3456, "IDF1": 50.0}})
    page = build_report(run.uri)
    sec = {name: page[page.index(f"<h2 id={name}>"):] for name in ("dataset", "training", "tracking")}
    assert page.index("<h2 id=dataset>") < page.index("<h2 id=training>") < page.index("<h2 id=tracking>")
    assert "<td class=l>bbox_AP</td><td>0.4321</td>" in sec["training"].split("<h2 id=tracking>")[0]
    assert "<td class=l>HOTA</td><td>12.3456</td>" in sec["tracking"]
    assert "best checkpoint <code>/x/best.pt</code>" in page
    assert "<td class=l>annotations</td><td>6</td>" in sec["dataset"].split("<h2 id=training>")[0]
    assert "Class counts" in page and "Summary per split" in page
    assert "overwrites an earlier one" in page  # the flat keys, labelled as such


def test_compare_page_lists_metrics_curves_and_config_diff(runs, capsys):
    a, b = runs["train_a"], runs["train_b"]
    out = runs["tmp"] / "compare.html"
    assert main(["report", a, b, "--out", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["compare"].endswith(".html") and storage.exists(info["compare"])
    page = out.read_text()
    assert "<td class=l>train.max_iter</td><td class=l>2</td><td class=l>1</td>" in page
    assert "<td class=l>seed</td><td class=l>0</td><td class=l>3</td>" in page
    ea = max(_table(a, "eval_metrics"), key=lambda r: r["iteration"])
    eb = max(_table(b, "eval_metrics"), key=lambda r: r["iteration"])
    assert f"<td class=l>val bbox_AP</td><td>{ea['bbox_AP']:.4f}</td><td>{eb['bbox_AP']:.4f}</td>" in page
    assert "training curves overlaid" in dict(_imgs(page))
    assert main(["report", a, b, a, "--json"]) == 2  # at most two runs


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


_CHECK = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images].map(i => [i.alt, i.complete, i.naturalWidth]);
  const h2 = [...document.querySelectorAll('h2')].map(h => h.textContent);
  const pre = document.createElement('pre'); pre.id = 'cvray-check';
  pre.textContent = JSON.stringify({imgs, h2}); document.body.appendChild(pre);
});
</script></body>"""


def test_reports_render_in_headless_chromium(runs, tmp_path, capsys):
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium); the HTML checks above still ran")
    import cv2

    pages = {"train": (_report(runs["train_a"], tmp_path, "train"), ["Summary", "Training", "Issues"]),
             "track": (_report(runs["track"], tmp_path, "track"), ["Summary", "Tracking"]),
             "card": (_report(runs["card"], tmp_path, "card"), ["Dataset"]),
             "compare": (_report(runs["train_a"], tmp_path, "compare", runs["train_b"]),
                         ["Metrics side by side", "Training curves overlaid", "Config diff"])}
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--virtual-time-budget=10000",
             f"--user-data-dir={tmp_path / 'profile'}"]
    for name, (page, sections) in pages.items():
        probe = tmp_path / f"{name}-probe.html"
        probe.write_text(page.replace("</body>", _CHECK))
        dom = subprocess.run([exe, *flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True,
                             timeout=120).stdout
        found = re.search(r'<pre id="cvray-check">(.*?)</pre>', dom, re.S)
        assert found, f"{name}: the check script did not run"
        import html as _html

        check = json.loads(_html.unescape(found.group(1)))
        for s in sections:
            assert any(h.startswith(s) for h in check["h2"]), (name, s, check["h2"])
        assert check["imgs"], name
        bad = [i for i in check["imgs"] if not (i[1] and i[2] > 0)]
        assert not bad, f"{name}: images that did not decode: {bad}"
        shot = tmp_path / f"{name}.png"  # kept as the test's artifact under pytest's tmp dir
        subprocess.run([exe, *flags, f"--screenshot={shot}", "--window-size=1200,2400",
                        (tmp_path / f"{name}.html").as_uri()], capture_output=True, timeout=120, check=False)
        img = cv2.imread(str(shot))
        assert img is not None and img.shape[:2] == (2400, 1200), name
        assert img.std() > 10, f"{name}: blank page"
