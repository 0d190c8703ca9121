"""Appearance extractors (histogram, cvray-trained CNN, weights by path) and camera-motion compensation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cvray.data.synth_mot import MotSynthConfig, make_mot
from cvray.models.weights import WeightsError
from cvray.track.appearance import ColorHistogramExtractor, build_extractor
from cvray.track.cmc import CameraMotion, warp_states
from cvray.track.config import AppearanceConfig, CMCConfig, TrackConfig
from cvray.track.embedding import (CNNExtractor, EmbeddingNet, batch_hard_triplet_loss, gt_crops,
                                   load_cnn_extractor, save_weights, train_embedding_net)
from cvray.track.io import read_mot, read_seqinfo
from cvray.track.metrics import combine, evaluate_sequence, summarize
from cvray.track.records import tracks_to_mot
from cvray.track.sequence import track_mot_rows
from cvray.track.sequence import load_frame

class _NotATensor:  # any class: unpickling it would run arbitrary code paths
    pass


CFG = AppearanceConfig(crop_size=(32, 16), train_steps=40, min_visibility=0.3)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_mot(tmp_path_factory.mktemp("app"), n_videos=3, seed=5, n_frames=30, n_objects=5)


def _crops(seqs, offset):
    cs, ls = [], []
    for k, s in enumerate(seqs):
        c, l = gt_crops(lambda f, d=s["dir"]: load_frame(d + "/img1", f), read_mot(s["gt"]), CFG.crop_size,
                        CFG.min_visibility, label_offset=(offset + k) * 1000)
        cs.append(c), ls.append(l)
    return np.concatenate(cs), np.concatenate(ls)


def _separation(emb, lab):
    """mean same-identity distance / mean different-identity distance (lower is better)."""
    d = 1 - emb @ emb.T
    same = lab[:, None] == lab[None, :]
    np.fill_diagonal(same, False)
    return d[same].mean() / d[lab[:, None] != lab[None, :]].mean()


def _embed(extractor, crops):
    return np.concatenate([extractor(c, np.array([[0, 0, c.shape[1], c.shape[0]]])) for c in crops])


def test_histogram_extractor_properties():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
    img[:, 40:] = [200, 30, 30]
    ex = ColorHistogramExtractor(bins=4, stripes=2)
    f = ex(img, np.array([[0, 0, 40, 60], [40, 0, 80, 60], [45, 5, 75, 55], [-10, -10, 5, 5]]))
    assert f.shape == (4, 24) and np.allclose(np.linalg.norm(f, axis=1), 1, atol=1e-5)
    assert 1 - f[1] @ f[2] < 1e-6            # same uniform colour: identical embedding
    assert 1 - f[0] @ f[1] > 0.3             # noise vs red: far apart
    assert build_extractor(AppearanceConfig(extractor="none")) is None
    with pytest.raises(ValueError, match="weights"):
        build_extractor(AppearanceConfig(extractor="cnn"))


def test_triplet_loss_hand_computed():
    e = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    lab = torch.tensor([0, 0, 1, 1])
    assert batch_hard_triplet_loss(e, lab, 0.3).item() == pytest.approx(0.0)   # d_pos 0, d_neg 1
    e2 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])       # positives orthogonal
    # every anchor: hardest positive 1, hardest negative 0 -> relu(1 - 0 + 0.3) = 1.3
    assert batch_hard_triplet_loss(e2, lab, 0.3).item() == pytest.approx(1.3)


def test_trained_cnn_separates_unseen_identities_and_round_trips(synth, tmp_path):
    tr_c, tr_l = _crops(synth["sequences"][:2], 0)
    te_c, te_l = _crops(synth["sequences"][2:], 10)            # identities never seen in training
    torch.manual_seed(0)
    untrained = _separation(_embed(CNNExtractor(EmbeddingNet(CFG.embedding_dim), CFG.crop_size), te_c), te_l)
    model, losses = train_embedding_net(tr_c, tr_l, CFG, seed=0)
    trained = _separation(_embed(CNNExtractor(model, CFG.crop_size), te_c), te_l)
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    assert trained < 0.6 * untrained, (trained, untrained)
    hist = _separation(_embed(ColorHistogramExtractor(), te_c), te_l)
    assert hist < 0.2                                          # training-free default also separates
    # weights by path, loaded weights_only: identical embeddings
    path = tmp_path / "emb.pt"
    path.write_bytes(save_weights(model))
    ex = build_extractor(AppearanceConfig(extractor="cnn", weights=str(path), crop_size=CFG.crop_size))
    np.testing.assert_allclose(_embed(ex, te_c[:5]), _embed(CNNExtractor(model, CFG.crop_size), te_c[:5]),
                               atol=1e-6)
    # a pickle carrying an arbitrary object is refused by weights_only loading
    bad = tmp_path / "bad.pt"
    torch.save({"head.weight": torch.zeros(2), "x": _NotATensor()}, bad)
    with pytest.raises(WeightsError, match="bad.pt"):
        load_cnn_extractor(str(bad))


def test_tracker_uses_appearance_from_images(synth):
    s = synth["sequences"][0]
    cfg = TrackConfig(appearance={"extractor": "histogram"}, log_associations=True)
    frames = track_mot_rows(read_mot(s["det"]), config=cfg, load_image=lambda f: load_frame(s["dir"] + "/img1", f))
    assert len(frames) == 30 and sum(len(f) for f in frames) > 50


# -- camera motion compensation -------------------------------------------------------------------
@pytest.fixture(scope="module")
def panning(tmp_path_factory):
    return make_mot(tmp_path_factory.mktemp("pan"), n_videos=3, seed=2, n_frames=40, n_objects=5,
                    camera_pan=True, config=MotSynthConfig(pan_speed=0.06))


def test_cmc_recovers_camera_translation(panning):
    s = panning["sequences"][0]
    cams = np.asarray(s["camera"], float)
    cm = CameraMotion(CMCConfig(enabled=True))
    errors, scales = [], []
    for f in range(1, 41):
        warp = cm.estimate(load_frame(s["dir"] + "/img1", f))
        if f == 1:
            np.testing.assert_array_equal(warp, np.eye(2, 3))
        else:  # the scene moves opposite to the camera
            errors.append(np.abs(warp[:, 2] + (cams[f - 1] - cams[f - 2])).max())
            scales.append(abs(np.hypot(warp[0, 0], warp[0, 1]) - 1))
    assert np.median(errors) < 1.5, errors        # pixels; the camera moves ~8 px per frame
    assert np.median(scales) < 0.02, scales       # pure translation: no scale/rotation


def test_warp_states_hand_computed():
    mean = np.array([[10.0, 20.0, 4.0, 8.0, 1.0, 0.0, 0.0, 0.0]])
    cov = np.eye(8)[None].copy()
    warp = np.array([[2.0, 0.0, 5.0], [0.0, 2.0, -1.0]])      # scale 2, shift (5, -1)
    m, P = warp_states(warp, mean, cov)
    np.testing.assert_allclose(m[0], [25, 39, 8, 16, 2, 0, 0, 0])
    np.testing.assert_allclose(P[0], 4 * np.eye(8))


def test_cmc_improves_tracking_under_camera_pan(panning):
    def evaluate(cfg):
        parts = []
        for s in panning["sequences"]:
            si = read_seqinfo(s["seqinfo"])
            fr = track_mot_rows(read_mot(s["det"]), config=cfg, frame_rate=si.frame_rate,
                                load_image=lambda f, d=s["dir"]: load_frame(d + "/img1", f))
            parts.append(evaluate_sequence(read_mot(s["gt"]), tracks_to_mot(fr)))
        return summarize(combine(parts))

    off, on = evaluate(TrackConfig()), evaluate(TrackConfig(cmc={"enabled": True}))
    # measured (pan 0.06 of the width per frame): HOTA 49.6 -> 54.4, IDF1 64.2 -> 72.3
    assert on["HOTA"] >= off["HOTA"] + 2.0 and on["IDF1"] >= off["IDF1"] + 5.0, (off, on)
