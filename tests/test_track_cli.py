"""``cvray track`` / ``cvray track eval`` and the per-sequence Ray actors."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import motmetrics
import numpy as np
import pytest

from cvray.cli.main import main
from cvray.data.synth_mot import make_mot
from cvray.track.config import TrackConfig
from cvray.track.io import read_mot
from cvray.track.sequence import SequenceJob, process_sequence

TUD = Path(motmetrics.__file__).parent / "data"


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_mot(tmp_path_factory.mktemp("mot"), n_videos=2, seed=3, n_frames=30, n_objects=4)


def _json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_track_eval_json_reproduces_devkit(capsys, tmp_path, shared_dir):
    expected = json.loads((shared_dir / "refdata/mot/expected_tud.json").read_text())
    pred = tmp_path / "pred"
    pred.mkdir()
    for s in ("TUD-Campus", "TUD-Stadtmitte"):
        shutil.copy(TUD / s / "test.txt", pred / f"{s}.txt")
    assert main(["track", "eval", "--gt", str(TUD), "--pred", str(pred), "--json"]) == 0
    out = _json(capsys)
    assert set(out) == {"TUD-Campus", "TUD-Stadtmitte", "combined"}
    for seq in ("TUD-Campus", "TUD-Stadtmitte"):
        for k, v in expected[seq].items():
            got = out[seq]["devkit"] if k in out[seq]["devkit"] else out[seq]  # devkit CLEAR; IDF1 on top
            assert (got[k] == v) if isinstance(v, int) else round(got[k], 1) == v, (seq, k)
    for k, v in expected["combined"].items():
        assert out["combined"][k] == pytest.approx(v, abs=5e-4)
    for k in ("MOTA", "MOTP", "IDF1", "IDSW", "Frag", "MT", "PT", "ML", "HOTA", "DetA", "AssA"):
        assert k in out["combined"]


def test_track_eval_flat_gt_files_and_missing_sequence(capsys, tmp_path):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir(), pred.mkdir()
    shutil.copy(TUD / "TUD-Campus" / "gt.txt", gt / "TUD-Campus.txt")
    shutil.copy(TUD / "TUD-Stadtmitte" / "gt.txt", gt / "TUD-Stadtmitte.txt")
    shutil.copy(TUD / "TUD-Campus" / "test.txt", pred / "TUD-Campus.txt")
    assert main(["track", "eval", "--gt", str(gt), "--pred", str(pred), "--json"]) == 0
    out = _json(capsys)
    assert out["missing_predictions"] == ["TUD-Stadtmitte"]
    assert out["TUD-Stadtmitte"]["FN"] == 1156 and out["TUD-Campus"]["IDSW"] == 7
    assert main(["track", "eval", "--gt", str(gt), "--pred", str(tmp_path / "none")]) == 2


def test_track_single_sequence_cli_then_eval(capsys, tmp_path, synth):
    seq = synth["sequences"][0]
    out = tmp_path / "out"
    rc = main(["track", "--det", seq["det"], "--seqinfo", seq["seqinfo"], "--out", str(out),
               "--root", str(tmp_path / "runs"), "--json", "track.min_hits=2"])
    assert rc == 0
    summary = _json(capsys)
    assert summary["sequences"] == 1 and summary["failed"] == 0 and "HOTA" in summary["metrics"]
    txt = out / "SYN-01.txt"
    rows = read_mot(str(txt))
    assert len(rows) == summary["boxes"] and (out / "tracks" / "SYN-01.parquet").exists()
    assert main(["track", "eval", "--gt", seq["gt"], "--pred", str(txt), "--json"]) == 0
    ev = _json(capsys)
    assert ev["combined"]["HOTA"] == pytest.approx(summary["metrics"]["HOTA"])
    # the run is committed with its tables
    run_dir = next((tmp_path / "runs").iterdir())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "succeeded" and {"sequences", "metrics"} <= set(manifest["tables"])


def test_unknown_override_is_rejected(capsys, tmp_path, synth):
    seq = synth["sequences"][0]
    assert main(["track", "--det", seq["det"], "--out", str(tmp_path), "track.max_agee=3"]) == 2
    assert "max_agee" in capsys.readouterr().err


def test_actor_per_sequence_parallel_idempotent_and_bad_file(ray_session, tmp_path, synth):
    from cvray.track.distributed import track_sequences

    bad = tmp_path / "bad_det.txt"
    bad.write_text("1,-1,10,10,5\n")
    jobs = [SequenceJob(name=s["name"], det_uri=s["det"], frame_rate=10, num_frames=30, gt_uri=s["gt"])
            for s in synth["sequences"]]
    jobs.append(SequenceJob(name="BROKEN", det_uri=str(bad)))
    out = str(tmp_path / "out")
    cfg = TrackConfig()
    res = track_sequences(jobs, cfg, out, max_parallel=2)
    assert [r["sequence"] for r in res] == ["SYN-01", "SYN-02", "BROKEN"]
    assert "bad_det.txt:1" in res[2]["error"]
    # actor results equal the in-process result, and re-running rewrites the same files
    local = process_sequence(jobs[0], cfg, str(tmp_path / "local"))
    first = (Path(out) / "SYN-01.txt").read_bytes()
    assert first == (tmp_path / "local" / "SYN-01.txt").read_bytes()
    assert res[0]["partial"] == local["partial"]
    track_sequences(jobs[:1], cfg, out)
    assert (Path(out) / "SYN-01.txt").read_bytes() == first
    assert sorted(p.name for p in Path(out).glob("*.txt")) == ["SYN-01.txt", "SYN-02.txt"]


def test_track_eval_diagnostics_json(capsys, synth, tmp_path):
    seq = synth["sequences"][0]
    assert main(["track", "--det", seq["det"], "--out", str(tmp_path / "o"), "--root", str(tmp_path / "r"),
                 "--json"]) == 0
    capsys.readouterr()
    root = str(Path(seq["dir"]).parent)
    assert main(["track", "eval", "--gt", root, "--pred", str(tmp_path / "o"), "--diagnostics", "--json"]) == 0
    out = _json(capsys)
    assert out["missing_predictions"] == ["SYN-02"]
    diag = out["SYN-01"]["diagnostics"]
    # diagnostics attribute the devkit (motmetrics) events: their counts are the devkit ones
    assert sum(diag["causes"]["IDSW"].values()) == out["SYN-01"]["devkit"]["IDSW"]
    assert sum(diag["causes"]["Frag"].values()) == out["SYN-01"]["devkit"]["Frag"]


def test_track_from_predictions_parquet(capsys, tmp_path, synth):
    """`cvray predict` output (video frames) as tracker input: same tracks as from det.txt."""
    from cvray.predict.records import Detections as PredDetections, detections_to_table
    from cvray.io import storage
    from cvray.track.io import read_predictions, split_frames

    seq = synth["sequences"][0]
    det = read_mot(seq["det"])
    by_frame = split_frames(det)
    recs = []
    for f in range(1, 31):
        r = by_frame.get(f, np.zeros((0, 10)))
        boxes = np.c_[r[:, 2:4], r[:, 2:4] + r[:, 4:6]]
        recs.append(PredDetections(1000 + f, 128, 128, boxes, r[:, 6], np.ones(len(r), np.int32),
                                   file_name="SYN-01.mp4", frame_index=f - 1))
    pq = tmp_path / "pred.parquet"
    storage.write_parquet(detections_to_table(recs[::-1]), str(pq))      # row order must not matter
    back = read_predictions(str(pq))
    assert list(back) == ["SYN-01"]
    np.testing.assert_allclose(back["SYN-01"][:, [0, 2, 3, 4, 5, 6]], det[:, [0, 2, 3, 4, 5, 6]], atol=1e-9)
    assert main(["track", "--det", str(pq), "--out", str(tmp_path / "a"), "--frame-rate", "10",
                 "--root", str(tmp_path / "r"), "--json"]) == 0
    assert main(["track", "--det", seq["det"], "--out", str(tmp_path / "b"), "--frame-rate", "10",
                 "--root", str(tmp_path / "r"), "--json"]) == 0
    assert read_mot(str(tmp_path / "a" / "SYN-01.txt")).tolist() == read_mot(str(tmp_path / "b" / "SYN-01.txt")).tolist()


def test_outputs_and_eval_on_s3(capsys, s3_bucket, synth):
    seq = synth["sequences"][1]
    job = SequenceJob(name="SYN-02", det_uri=seq["det"], frame_rate=10, gt_uri=seq["gt"])
    res = process_sequence(job, TrackConfig(), f"{s3_bucket}/tracks")
    assert main(["track", "eval", "--gt", seq["gt"], "--pred", f"{s3_bucket}/tracks/SYN-02.txt", "--json"]) == 0
    out = _json(capsys)
    from cvray.track.metrics import summarize

    assert out["combined"]["HOTA"] == pytest.approx(summarize(res["partial"])["HOTA"])


def test_bad_det_file_becomes_issue_row(capsys, tmp_path):
    bad = tmp_path / "S" / "det" / "det.txt"
    bad.parent.mkdir(parents=True)
    bad.write_text("1,-1,10,10,5,5,0.9\n2,-1,oops,10,5,5,0.9\n")
    rc = main(["track", "--det", str(bad), "--out", str(tmp_path / "o"), "--root", str(tmp_path / "r"), "--json"])
    assert rc == 1
    out = _json(capsys)
    assert "det.txt:2: non-numeric" in out["errors"]["S"]
    import pyarrow.parquet as pq

    run_dir = next((tmp_path / "r").iterdir())
    issues = pq.read_table(next((run_dir / "tables" / "issues").glob("*.parquet"))).to_pylist()
    assert issues[0]["rule"] == "sequence.failed" and issues[0]["file"] == str(bad)
