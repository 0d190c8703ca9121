"""Temporal presence filter (cvray/track/presence.py) on constructed sequences whose flicker counts
are worked out by hand in the comments."""
from __future__ import annotations

import numpy as np
import pytest

from cvray.track.presence import count_toggles, mot_rows, presence_states, presence_summary


def _rows(track_id, pattern, sequence="s", first=0, **extra):
    """One row per observed frame of ``pattern`` ("1" observed, "0" missed)."""
    return [{"sequence": sequence, "track_id": track_id, "frame": first + i, **extra}
            for i, c in enumerate(pattern) if c == "1"]


# A: 1 1 0 1 1 1 0 1 1 1   raw toggles at f2, f3, f6, f7 = 4
#    N=3, M=2: present from f5 (3rd consecutive), the single miss at f6 is held -> present toggles 0
#    onset delay 5; observed but not present f0 f1 f3 f4 = 4; held (present, not observed) f6 = 1
A = "1101110111"
# B: 1 1 -- too short for N=3: never present (2 observations suppressed), raw toggles 0
B = "11"
# C: 1 1 1 0 0 0 1 1 1     raw toggles f3, f6 = 2
#    present f2..f3 (f3 is the 1st miss, held), absent at f4 (2nd miss), present again at f8:
#    P = F F T T F F F F T -> toggles f4, f8 = 2; onset delay 2; hidden f0 f1 f6 f7 = 4; held f3 = 1
C = "111000111"


def test_states_and_toggles_by_hand():
    obs = np.array([c == "1" for c in A])
    assert presence_states(obs, 3, 2).tolist() == [False] * 5 + [True] * 5
    assert count_toggles(obs) == 4
    pres = presence_states([c == "1" for c in C], 3, 2)
    assert pres.tolist() == [False, False, True, True, False, False, False, False, True]
    assert count_toggles(pres) == 2
    # N=1, M=1 is no filter at all
    assert presence_states(obs, 1, 1).tolist() == obs.tolist()
    # M=1 drops at the first miss: C's present state is F F T F F F F F T (toggles f3, f8)
    assert count_toggles(presence_states([c == "1" for c in C], 3, 1)) == 2
    assert count_toggles([False, False, True, False]) == 1  # counted from the first visible frame
    with pytest.raises(ValueError):
        presence_states(obs, 0, 2)


def test_summary_numbers_by_hand():
    rows = _rows(1, A) + _rows(2, B) + _rows(3, C, first=100)
    # an abstained detection and a low score are not evidence: they change nothing
    rows += [{"sequence": "s", "track_id": 1, "frame": 2, "decision": "abstain"},
             {"sequence": "s", "track_id": 1, "frame": 6, "score": 0.01}]
    s = presence_summary(rows, n_consecutive=3, max_missed=2, min_score=0.1, per_track=True)
    assert s["tracks"] == 3 and s["track_frames"] == 10 + 2 + 9 and s["observed_frames"] == 8 + 2 + 6
    assert s["raw"]["toggles"] == 4 + 0 + 2 and s["present"]["toggles"] == 0 + 0 + 2
    assert s["raw"]["flicker_rate"] == pytest.approx(6 / 21) and s["present"]["flicker_rate"] == pytest.approx(2 / 21)
    assert s["flicker_removed"] == pytest.approx(1 - 2 / 6)
    assert s["onset_delay_mean"] == pytest.approx((5 + 2) / 2) and s["onset_delay_max"] == 5
    assert s["tracks_never_present"] == 1 and s["observed_frames_suppressed"] == 2
    assert s["observed_not_present"] == 4 + 2 + 4 and s["held_frames"] == 1 + 0 + 1
    d = {t["track_id"]: t for t in s["tracks_detail"]}
    assert (d[3]["first_frame"], d[3]["toggles_raw"], d[3]["toggles_present"], d[3]["onset_delay"]) == (100, 2, 2, 2)
    assert d[2]["onset_delay"] is None


def test_sequences_keep_tracks_apart_and_decisions_filter():
    # the same track id in two sequences is two tracks; frames 0,1,2 in one and 3,4,5 in the other
    # would be one unbroken run if they were merged
    rows = _rows(7, "111", sequence="a") + _rows(7, "111", sequence="b", first=3)
    s = presence_summary(rows, n_consecutive=3)
    assert s["tracks"] == 2 and s["track_frames"] == 6 and s["onset_delay_mean"] == 2
    # observe/act count, abstain does not: "act abstain act" is a gap of one frame
    rows = [{"track_id": 1, "frame": f, "decision": d} for f, d in enumerate(["act", "abstain", "observe"])]
    s = presence_summary(rows, n_consecutive=1, max_missed=1)
    assert s["raw"]["toggles"] == 2 and s["observed_frames"] == 2
    assert presence_summary(rows, n_consecutive=1, max_missed=2)["present"]["toggles"] == 0
    # no observations at all
    s = presence_summary([])
    assert s["tracks"] == 0 and s["raw"]["flicker_rate"] is None and s["flicker_removed"] is None
    with pytest.raises(ValueError, match="track_id and frame"):
        presence_summary([{"frame": 1}])


def test_mot_rows_feed_the_summary():
    # track 4 observed in frames 1, 2, 4 (score 0.9, 0.8, 0.2): raw toggles 2; with min_score 0.5 frame 4 drops
    mot = np.array([[1, 4, 0, 0, 5, 5, 0.9, -1, -1, -1], [2, 4, 0, 0, 5, 5, 0.8, -1, -1, -1],
                    [4, 4, 0, 0, 5, 5, 0.2, -1, -1, -1]])
    rows = mot_rows(mot, "seq")
    assert rows[0] == {"sequence": "seq", "track_id": 4, "frame": 1, "score": 0.9}
    assert presence_summary(rows, n_consecutive=1, max_missed=1)["raw"]["toggles"] == 2
    s = presence_summary(rows, n_consecutive=1, max_missed=1, min_score=0.5)
    assert s["raw"]["toggles"] == 0 and s["track_frames"] == 2
    assert mot_rows(np.zeros((0, 10))) == []
