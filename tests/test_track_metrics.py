"""MOT metrics oracle: reproduce the MOTChallenge devkit / TrackEval values on motmetrics' TUD data.

The oracle's CLEAR values are devkit values: they are checked under ``summarize(...)["devkit"]``
(the top-level CLEAR keys follow TrackEval: tests/test_track_clear_trackeval.py)."""
from __future__ import annotations

import json
from pathlib import Path

import motmetrics
import numpy as np
import pytest
import trackeval.metrics.clear
import trackeval.metrics.hota
import trackeval.metrics.identity

from cvray.track.io import MOTFormatError, find_sequences, parse_mot, read_mot
from cvray.track.metrics import DEVKIT_KEYS, combine, evaluate_sequence, summarize
from cvray.track.metrics import compat
from cvray.track.metrics.evaluate import box_iou_xywh

TUD = Path(motmetrics.__file__).parent / "data"
SEQS = ("TUD-Campus", "TUD-Stadtmitte")


@pytest.fixture(scope="module")
def expected(shared_dir):
    return json.loads((shared_dir / "refdata" / "mot" / "expected_tud.json").read_text())


@pytest.fixture(scope="module")
def partials():
    return {s: evaluate_sequence(read_mot(str(TUD / s / "gt.txt")), read_mot(str(TUD / s / "test.txt")))
            for s in SEQS}


@pytest.mark.parametrize("seq", SEQS)
def test_tud_devkit_values_per_sequence(expected, partials, seq):
    top = summarize(partials[seq])
    for key, want in expected[seq].items():
        got = top["devkit"] if key in DEVKIT_KEYS else top
        if isinstance(want, int):
            assert got[key] == want, key
        else:  # published values are rounded to one decimal
            assert round(got[key], 1) == pytest.approx(want, abs=1e-9), (key, got[key])
    assert top["HOTA"] == pytest.approx(expected["per_sequence_HOTA"][seq], abs=5e-3)


def test_tud_combined_hota_from_summed_counts(expected, partials):
    comb = summarize(combine(list(partials.values())))
    for key in ("HOTA", "DetA", "AssA"):
        assert comb[key] == pytest.approx(expected["combined"][key], abs=5e-4), key
    # combined HOTA is NOT the mean of per-sequence HOTA
    mean = np.mean([summarize(p)["HOTA"] for p in partials.values()])
    assert abs(comb["HOTA"] - mean) > 1e-3
    # CLEAR / identity combine by summing counts: equals motmetrics' merged "OVERALL" row
    seq = [summarize(p)["devkit"] for p in partials.values()]
    dk = comb["devkit"]
    assert dk["FP"] == sum(s["FP"] for s in seq) and dk["IDSW"] == 14
    n_gt = dk["GT_dets"]
    assert dk["MOTA"] == pytest.approx(100 * (1 - (dk["FN"] + dk["FP"] + dk["IDSW"]) / n_gt))
    assert dk["MOTA"] == pytest.approx(55.5116, abs=1e-4)  # motmetrics compute_many OVERALL
    assert comb["IDF1"] == pytest.approx(62.4296, abs=1e-4)


def test_tud_oracle_through_track_eval_rows(expected, tmp_path):
    """``cvray track eval``'s rows (JSON and the metrics table) carry the oracle under ``devkit``."""
    from cvray.track.evaluation import TrackEvalInputs, evaluate_tracking
    from cvray.track.records import METRICS_SCHEMA, metrics_to_table

    pred = tmp_path / "pred"
    pred.mkdir()
    for s in SEQS:
        (pred / f"{s}.txt").write_text((TUD / s / "test.txt").read_text())
    out = evaluate_tracking(TrackEvalInputs(gt=str(TUD), pred=str(pred)))
    for s in SEQS:
        for key, want in expected[s].items():
            got = out[s]["devkit"][key] if key in DEVKIT_KEYS else out[s][key]
            assert got == want if isinstance(want, int) else round(got, 1) == want, (s, key)
    assert out["combined"]["devkit"]["IDSW"] == 14
    assert set(out["combined"]["devkit"]) == set(DEVKIT_KEYS)
    table = metrics_to_table({k: v for k, v in out.items() if isinstance(v, dict)})
    assert table.schema.equals(METRICS_SCHEMA, check_metadata=True)
    rows = {r["sequence"]: r for r in table.to_pylist()}
    for s in (*SEQS, "combined"):
        for key in DEVKIT_KEYS:
            assert rows[s][f"devkit_{key}"] == out[s]["devkit"][key]
            assert rows[s][key] == out[s][key]


def test_partials_are_plain_data(partials):
    # picklable / JSON-able: a Ray map-reduce moves them between processes
    text = json.dumps(partials["TUD-Campus"])
    assert summarize(json.loads(text)) == summarize(partials["TUD-Campus"])


def test_perfect_and_empty_tracker():
    gt = parse_mot("1,1,0,0,10,10,1\n1,2,20,0,10,10,1\n2,1,1,0,10,10,1\n2,2,21,0,10,10,1\n")
    perfect = summarize(evaluate_sequence(gt, gt.copy()))
    assert perfect["MOTA"] == 100 and perfect["IDF1"] == 100 and perfect["HOTA"] == pytest.approx(100)
    assert perfect["MOTP"] == pytest.approx(100)
    empty = summarize(evaluate_sequence(gt, np.zeros((0, 10))))
    assert empty["FN"] == 4 and empty["MOTA"] == 0 and empty["HOTA"] == 0 and empty["IDF1"] == 0
    # an ID swap in frame 2 is one switch per gt track
    swapped = gt.copy()
    swapped[2:, 1] = [2, 1]
    s = summarize(evaluate_sequence(gt, swapped))
    assert s["IDSW"] == 2 and s["MOTA"] == pytest.approx(50.0)


def test_zero_marked_gt_not_evaluated():
    gt = parse_mot("1,1,0,0,10,10,1\n1,2,20,0,10,10,0\n")
    s = summarize(evaluate_sequence(gt, parse_mot("1,5,0,0,10,10,1\n")))
    assert s["FN"] == 0 and s["FP"] == 0 and s["GT_dets"] == 1


def test_mot17_distractor_matches_removed():
    # gt 2 is a distractor (class 8): the prediction on it is neither FP nor TP
    gt = parse_mot("1,1,0,0,10,10,1,1,1\n1,2,50,0,10,10,0,8,1\n")
    pr = parse_mot("1,7,0,0,10,10,1\n1,8,50,0,10,10,1\n")
    s = summarize(evaluate_sequence(gt, pr, mot17_classes=True))
    assert s["FP"] == 0 and s["FN"] == 0 and s["GT_dets"] == 1
    assert summarize(evaluate_sequence(gt, pr))["FP"] == 1


# -- numpy-2 shims ----------------------------------------------------------------------------
def test_motmetrics_iou_matrix_needs_the_shim():
    from motmetrics.distances import iou_matrix as mm_iou

    a = np.array([[0, 0, 10, 10], [5, 5, 10, 10]], float)
    b = np.array([[0, 0, 10, 10], [20, 20, 5, 5], [5, 0, 10, 10]], float)
    if not hasattr(np, "asfarray"):
        with pytest.raises(AttributeError):
            mm_iou(a, b, max_iou=0.5)
    d = compat.iou_matrix(a, b, max_iou=0.5)
    np.testing.assert_allclose(d[0, 0], 0.0)
    assert np.isnan(d[0, 1]) and np.isnan(d[1, 1])
    # hand-computed: [0,0,10,10] vs [5,0,10,10]: inter 50, union 150 -> distance 2/3 > 0.5 -> nan
    assert np.isnan(d[0, 2])
    np.testing.assert_allclose(compat.iou_matrix(a, b)[0, 2], 1 - 50 / 150)
    # same values as trackeval's box IoU
    from trackeval.datasets._base_dataset import _BaseDataset

    np.testing.assert_allclose(box_iou_xywh(a, b), _BaseDataset._calculate_box_ious(a, b, box_format="xywh"))
    assert compat.iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_asfarray_shim_semantics():
    out = compat.asfarray([1, 2, 3])
    assert out.dtype == np.float64 and out.tolist() == [1.0, 2.0, 3.0]
    assert compat.asfarray(np.ones(2, np.float32), np.float32).dtype == np.float32
    assert compat.asfarray([1], dtype=np.int32).dtype == np.float64  # non-float dtype -> float64


def test_trackeval_metric_modules_use_no_removed_numpy_alias():
    for mod in (trackeval.metrics.hota, trackeval.metrics.clear, trackeval.metrics.identity):
        assert compat.removed_numpy_aliases(mod) == [], mod.__name__
    import motmetrics.distances

    assert compat.removed_numpy_aliases(motmetrics.distances) == ["asfarray"]


# -- MOTChallenge files -----------------------------------------------------------------------
def test_parse_mot_errors_name_file_and_line():
    with pytest.raises(MOTFormatError, match=r"seq\.txt:2: expected at least 6"):
        parse_mot("1,1,0,0,1,1\n1,2,3\n", source="seq.txt")
    with pytest.raises(MOTFormatError, match=r"x\.txt:1: frame must be"):
        parse_mot("0,1,0,0,1,1\n", source="x.txt")
    with pytest.raises(MOTFormatError, match=r"non-numeric"):
        parse_mot("1,a,0,0,1,1\n", source="x.txt")


def test_find_sequences_layouts(tmp_path):
    (tmp_path / "gtdir" / "S1" / "gt").mkdir(parents=True)
    (tmp_path / "gtdir" / "S1" / "gt" / "gt.txt").write_text("1,1,0,0,1,1,1\n")
    (tmp_path / "pred").mkdir()
    (tmp_path / "pred" / "S1.txt").write_text("1,1,0,0,1,1,1\n")
    assert list(find_sequences(str(tmp_path / "gtdir"))) == ["S1"]
    assert list(find_sequences(str(tmp_path / "pred"))) == ["S1"]
    assert list(find_sequences(str(tmp_path / "gtdir" / "S1" / "gt" / "gt.txt"))) == ["S1"]
    with pytest.raises(FileNotFoundError, match="nothere"):
        find_sequences(str(tmp_path / "nothere"))
