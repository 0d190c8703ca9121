"""``TrackConfig``: every threshold of the tracker, named (the ``track:`` section of a config).

Defaults follow ByteTrack (Zhang et al. 2022) where it has a value; times are given at a reference
frame rate of 30 fps and scaled to the sequence's frame rate (``max_age`` frames at 30 fps).
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from cvray.config import CvrayModel
from cvray.drift.config import DriftConfig

__all__ = ["AppearanceConfig", "CMCConfig", "DiagnosticsConfig", "KalmanConfig", "TrackConfig"]


class KalmanConfig(CvrayModel):
    """Noise of the constant-velocity filter, relative to box size (ByteTrack/BoT-SORT values)."""

    std_weight_position: float = Field(1.0 / 20, gt=0, description="position std per unit of box size")
    std_weight_velocity: float = Field(0.003, gt=0, description="velocity std per unit of box size at the "
                                       "track's reference_fps (ByteTrack: 1/160; see docs/tracking.md)")
    velocity_fps_power: float = Field(1.0, ge=0, description="std_weight_velocity is scaled by "
                                      "(reference_fps / fps) ** this (slower video, more change per frame)")
    nsa: bool = Field(True, description="NSA Kalman: measurement noise times (1 - detection score)")
    nsa_floor: float = Field(0.05, ge=0, le=1, description="NSA: smallest noise factor (score-1 detections)")


class AppearanceConfig(CvrayModel):
    """Appearance embeddings and how much they weigh in the first association."""

    extractor: Literal["none", "histogram", "cnn"] = Field(
        "none", description="none, training-free colour histogram, or a cvray-trained CNN")
    weights: str | None = Field(None, description="path of CNN weights (state_dict, loaded weights_only)")
    fusion: Literal["blend", "min"] = Field(
        "min", description="blend: (1-w)*IoU cost + w*cosine distance; min: BoT-SORT's "
        "min(IoU cost, cosine distance) with appearance counted only for close pairs")
    weight: float = Field(0.25, ge=0, le=1, description="blend weight w of the cosine distance")
    proximity: float = Field(0.5, gt=0, le=1, description="min fusion: IoU cost above this ignores appearance")
    max_distance: float = Field(0.5, ge=0, le=2, description="cosine distance above which a pair is gated out")
    ema_momentum: float = Field(0.9, ge=0, lt=1, description="gallery EMA: e = m*e + (1-m)*new")
    hist_bins: int = Field(8, ge=2, description="bins per HSV channel of the histogram extractor")
    hist_stripes: int = Field(3, ge=1, description="horizontal stripes of the histogram extractor")
    crop_size: tuple[int, int] = Field((64, 32), description="CNN input crop (height, width)")
    embedding_dim: int = Field(64, ge=4, description="CNN embedding size")
    triplet_margin: float = Field(0.3, gt=0, description="metric-learning margin (cosine distance)")
    train_steps: int = Field(150, ge=1, description="optimizer steps when cvray trains the CNN")
    train_lr: float = Field(3e-3, gt=0, description="Adam learning rate of CNN training")
    batch_ids: int = Field(8, ge=2, description="identities per training batch (P of PK sampling)")
    batch_per_id: int = Field(4, ge=2, description="crops per identity per batch (K)")
    train_threads: int = Field(1, ge=1, description="torch CPU threads while training the CNN")
    min_visibility: float = Field(0.5, ge=0, le=1, description="gt boxes less visible are not used as crops")


class CMCConfig(CvrayModel):
    """Camera-motion compensation (global affine between consecutive frames)."""

    enabled: bool = False
    max_features: int = Field(400, ge=10, description="corners tracked between frames")
    downscale: int = Field(2, ge=1, description="frames are shrunk by this factor before matching")
    ransac_threshold: float = Field(3.0, gt=0, description="RANSAC reprojection threshold (pixels)")


class DiagnosticsConfig(CvrayModel):
    """How ID switches / fragmentations are attributed to a cause, and occlusion strata."""

    occlusion_visibility: float = Field(0.5, ge=0, le=1, description="gt visibility below this = occluded")
    crossing_iou: float = Field(0.1, ge=0, le=1, description="overlap with another gt object = crossing")
    inside_fraction: float = Field(0.5, ge=0, le=1, description="box less inside the image = out of view")
    occlusion_bins: tuple[float, ...] = Field((0.25, 0.5, 0.75), description="visibility bin edges")


class TrackConfig(CvrayModel):
    """Tracker thresholds. Scores are detector confidences, costs are distances in [0, 1]."""

    scores: Literal["rank", "quantile", "minmax", "raw"] = Field(
        "rank", description="how detector scores are read before the thresholds below (rank: dense rank "
        "among the sequence's score values, any scale; quantile: empirical CDF; minmax; raw: calibrated "
        "[0, 1]; see cvray/track/scores.py)")
    high_score: float = Field(0.2, ge=0, le=1, description="detections >= this enter the first association")
    low_score: float = Field(0.0, ge=0, le=1, description="detections in [low, high) enter the second one")
    new_track_score: float = Field(0.3, ge=0, le=1, description="unmatched high detections >= this start tracks")
    oru: bool = Field(False, description="OC-SORT observation-centric re-update of a track re-found "
                      "after missed frames (virtual trajectory from its last observation)")
    ocr: bool = Field(False, description="OC-SORT observation-centric recovery: unmatched tracks' last "
                      "observed boxes vs leftover high detections")
    ocr_max_cost: float = Field(0.9, gt=0, le=1, description="recovery stage: max 1-IoU with the last observation")
    ego_shift: bool = Field(True, description="camera motion from the detections: the median innovation of "
                            "the first association's matches, when significant, shifts the tracks it left "
                            "unmatched, which then try the leftover high detections again")
    ego_min_matches: int = Field(3, ge=1, description="ego_shift: fewest first-stage matches to estimate a shift")
    ego_significance: float = Field(1.0, ge=0, description="ego_shift: an axis is shifted only when |median| "
                                    "> this x robust std (1.4826 MAD) / sqrt(matches)")
    two_stage: bool = Field(True, description="associate low-score detections in a second stage (BYTE)")
    second_includes_lost: bool = Field(True, description="lost tracks also take part in the second "
                                       "association (ByteTrack: only tracks tracked in the last frame)")
    match_max_cost: float = Field(0.8, gt=0, description="first association: no match above this cost")
    second_max_cost: float = Field(0.5, gt=0, description="second association (IoU only): max 1-IoU")
    tentative_max_cost: float = Field(0.7, gt=0, description="tentative tracks vs leftovers: max 1-IoU")
    iou_buffer: float = Field(0.0, ge=0, description="C-BIoU: boxes widened by this fraction of their size "
                              "on each side before IoU (0: plain IoU)")
    gating: Literal["none", "mahalanobis", "iou", "centre"] = Field(
        "iou", description="pairs failing the gate are never matched (iou: no overlap)")
    mahalanobis_gate: float = Field(9.4877, gt=0, description="chi-square 0.95 quantile, 4 dof")
    centre_gate: float = Field(2.0, gt=0, description="centre distance gate in units of track box diagonal")
    confirm_score: float | None = Field(None, ge=0, le=1, description="new tracks from detections >= this "
                                        "are confirmed at once (None: all wait for min_hits)")
    min_hits: int = Field(2, ge=1, description="tentative -> confirmed after this many matched frames "
                          "(2: ByteTrack activates a new track on its second match)")
    max_age: int = Field(60, ge=1, description="lost tracks are deleted after this many frames at 30 fps")
    age_per_hit: float = Field(1.0, ge=0, description="a lost track lives at most this many frames per "
                               "matched frame (capped by max_age; 0: off)")
    freeze_lost: bool = Field(False, description="lost tracks stay where last seen (no coasting)")
    reference_fps: float = Field(30.0, gt=0, description="frame rate at which max_age is given")
    fuse_score: bool = Field(False, description="multiply IoU similarity by detection score (ByteTrack)")
    per_class: bool = Field(False, description="only match detections and tracks of the same class")
    output_tentative: bool = Field(False, description="also output tentative tracks")
    output_box: Literal["kalman", "detection"] = Field(
        "kalman", description="box reported for a matched track: Kalman-corrected state or the detection")
    log_associations: bool = Field(False, description="keep a per-frame association log")
    offline_max_gap: int = Field(0, ge=0, description="opt-in offline post-process (`cvray track --offline`): "
                                 "fill track gaps up to this many frames by linear interpolation; it uses "
                                 "future frames, so its outputs and metrics are reported apart (0 = off)")
    kalman: KalmanConfig = Field(default_factory=KalmanConfig)
    appearance: AppearanceConfig = Field(default_factory=AppearanceConfig)
    cmc: CMCConfig = Field(default_factory=CMCConfig)
    diagnostics: DiagnosticsConfig = Field(default_factory=DiagnosticsConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    presence_frames: int = Field(3, ge=0, description="temporal evidence: a track is 'present' after this many "
                                 "consecutive observed frames (the summary's presence / flicker numbers; 0: off)")
    presence_max_missed: int = Field(2, ge=1, description="a present track becomes absent at this many "
                                     "consecutive missed frames")

    def kalman_velocity_std(self, frame_rate: float) -> float:
        """``kalman.std_weight_velocity`` at the sequence's frame rate (slower video, larger
        velocity change per frame)."""
        return self.kalman.std_weight_velocity * (self.reference_fps / frame_rate) ** self.kalman.velocity_fps_power

    def max_age_frames(self, frame_rate: float) -> int:
        """``max_age`` scaled from ``reference_fps`` to the sequence's frame rate."""
        return max(1, int(round(self.max_age * frame_rate / self.reference_fps)))
