"""Progress on long commands: a bar on a terminal, periodic plain lines with rate and ETA in a log."""
from __future__ import annotations

import io
import re

from cvray.cli.main import main
from cvray.cli.progress import Progress, format_eta


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_log_lines_have_count_rate_eta_and_are_periodic():
    clock, out = Clock(), io.StringIO()
    p = Progress("cvray train", "it", 300, stream=out, interval=10, tty=False, clock=clock)
    for i in range(0, 301, 3):     # 3 it per second of fake time: 100 updates over 100 s
        clock.t = 100.0 + i / 3
        p(i, loss=1.0 / (i + 1))
    p.close()
    lines = out.getvalue().splitlines()
    assert 9 <= len(lines) <= 12, lines       # one per 10 s, not one per update
    assert lines[-1].startswith("cvray train: 300/300 it (100%), 3.00 it/s, ETA 0s, loss=")
    mid = next(ln for ln in lines if ln.startswith("cvray train: 150/300"))
    assert "3.00 it/s" in mid and "ETA 50s" in mid
    assert format_eta(3725) == "1h02m" and format_eta(None) == "?"


def test_terminal_mode_draws_a_bar_and_no_log_lines():
    out = io.StringIO()
    with Progress("cvray predict", "img", 10, stream=out, tty=True) as p:
        for i in range(11):
            p(i, img_s=4.0)
    text = out.getvalue()
    assert "cvray predict" in text and "\r" in text and "img_s=4" in text
    assert not re.search(r"^cvray predict: \d+/10", text, re.M)


def test_track_shows_sequences_done_on_stderr(ray_session, tmp_path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path / "ds"), "--images", "1", "--videos", "2",
                 "synth.image_size=[48,48]", "synth.frames=6", "--root", str(tmp_path / "r"), "--json"]) == 0
    capsys.readouterr()
    assert main(["track", "--det", str(tmp_path / "ds" / "mot"), "--out", str(tmp_path / "t"),
                 "--root", str(tmp_path / "r"), "--json"]) == 0
    cap = capsys.readouterr()
    assert re.search(r"^cvray track: 2/2 seq \(100%\).*frames=12", cap.err, re.M), cap.err
    assert cap.out.count("\n") == 1 and "cvray track:" not in cap.out  # --json stays one object


def test_validate_shows_images_checked_on_stderr(ray_session, tmp_path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path / "ds"), "--images", "20", "--videos", "0",
                 "synth.image_size=[32,32]", "--root", str(tmp_path / "r"), "--json"]) == 0
    anns = sorted(str(p) for p in (tmp_path / "ds" / "coco" / "annotations").glob("instances_*.json"))
    for mode in ([], ["--local"]):  # Ray Data, and in process
        capsys.readouterr()
        main(["validate", *anns, "--images", str(tmp_path / "ds" / "coco" / "images"), "--no-baselines",
              "--root", str(tmp_path / "r"), "--json", *mode])
        err = capsys.readouterr().err
        assert re.search(r"^cvray validate: 20/20 img \(100%\)", err, re.M), (mode, err)
