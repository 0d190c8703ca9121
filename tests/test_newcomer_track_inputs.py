"""Issue 18 item 20: ``track`` refuses bad flags and reports bad sequences / rows / requests."""
from __future__ import annotations

import json
import shutil

import pytest

from cvray.cli.main import main
from cvray.data.synth_mot import make_mot
from cvray.runs import read_table


@pytest.fixture()
def seqs(tmp_path):
    return make_mot(tmp_path / "mot", n_videos=2, seed=3, n_frames=12, n_objects=3)


def _run(tmp_path, capsys, *argv):
    rc = main(["track", *argv, "--out", str(tmp_path / "out"), "--root", str(tmp_path / "runs"), "--json"])
    captured = capsys.readouterr()
    out = json.loads(captured.out.strip().splitlines()[-1]) if rc != 2 else None
    return rc, out, captured.err


def _issues(tmp_path, out):
    return read_table(str(tmp_path / "runs"), out["run_id"], "issues").to_pylist()


@pytest.mark.parametrize("rate", ["-5", "0", "nan", "inf"])
def test_frame_rate_flag_must_be_positive(tmp_path, capsys, seqs, rate):
    seq = seqs["sequences"][0]
    rc, _, err = _run(tmp_path, capsys, "--det", seq["det"], "--frame-rate", rate)
    assert rc == 2 and "--frame-rate" in err
    assert not (tmp_path / "runs").exists()


def _set_seqinfo(path, **kv):
    text = open(path).read().splitlines()
    text = [f"{line.split('=')[0]}={kv[line.split('=')[0]]}" if line.split("=")[0] in kv else line
            for line in text]
    open(path, "w").write("\n".join(text) + "\n")


@pytest.mark.parametrize("key,value", [("frameRate", "0"), ("seqLength", "-5"), ("frameRate", "abc")])
def test_bad_seqinfo_in_a_folder_is_an_issue_row_and_the_others_finish(tmp_path, capsys, seqs, key, value):
    bad = seqs["sequences"][0]
    _set_seqinfo(bad["seqinfo"], **{key: value})
    rc, out, _ = _run(tmp_path, capsys, "--det", seqs["root"])
    assert rc == 1 and out["sequences"] == 2 and out["failed"] == 1  # exit 1: a failed unit (the rule)
    rows = [r for r in _issues(tmp_path, out) if r["rule"] == "sequence.bad_seqinfo"]
    assert len(rows) == 1 and bad["name"] in rows[0]["message"] and rows[0]["severity"] == "error"
    # the seqinfo the user names on the command line is an input error
    rc, _, err = _run(tmp_path, capsys, "--det", bad["det"], "--seqinfo", bad["seqinfo"])
    assert rc == 2 and bad["seqinfo"] in err


def test_det_rows_with_non_positive_size_are_dropped_with_a_row(tmp_path, capsys, seqs):
    seq = seqs["sequences"][0]
    lines = open(seq["det"]).read().splitlines()
    f = lines[0].split(",")
    f[4], f[5] = "-10", "20"
    g = lines[1].split(",")
    g[5] = "0"
    open(seq["det"], "w").write("\n".join([",".join(f), ",".join(g), *lines[2:]]) + "\n")
    rc, out, _ = _run(tmp_path, capsys, "--det", seq["det"], "--seqinfo", seq["seqinfo"])
    assert rc == 0 and out["failed"] == 0 and out["skipped_detections"] == 2
    rows = [r for r in _issues(tmp_path, out) if r["rule"] == "detection.invalid"]
    assert len(rows) == 2 and all(r["file"] == seq["det"] for r in rows)
    assert any("-10" in r["message"] for r in rows)


def test_empty_det_txt_is_a_warning(tmp_path, capsys, seqs):
    seq = seqs["sequences"][0]
    open(seq["det"], "w").close()
    rc, out, _ = _run(tmp_path, capsys, "--det", seq["det"], "--seqinfo", seq["seqinfo"])
    assert rc == 0
    rows = [r for r in _issues(tmp_path, out) if r["rule"] == "sequence.no_detections"]
    assert len(rows) == 1 and rows[0]["severity"] == "warning" and rows[0]["file"] == seq["det"]
    assert out["warnings"] >= 1


def test_render_without_frames_is_a_warning(tmp_path, capsys, seqs):
    seq = seqs["sequences"][0]
    shutil.rmtree(f"{seq['dir']}/img1")
    rc, out, _ = _run(tmp_path, capsys, "--det", seq["det"], "--seqinfo", seq["seqinfo"], "--render")
    assert rc == 0 and "review_videos" not in out
    rows = [r for r in _issues(tmp_path, out) if r["rule"] == "render.no_frames"]
    assert len(rows) == 1 and seq["name"] in rows[0]["message"] and rows[0]["severity"] == "warning"
