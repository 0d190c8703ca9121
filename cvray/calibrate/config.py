"""``calibrate:`` section of ``cvray calibrate``: how detections are matched (IoU, score
threshold), the bins of each metric, which calibrators are fitted and which one is saved, the
splits, the corruption slices, and how the slices are spread over Ray model actors.

The model, its input geometry and the post-processing come from the ``predict`` section, so the
scores calibrated are the scores ``cvray predict`` writes (a calibrator fitted on another
post-processing policy would calibrate other scores).
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from cvray.config import CvrayModel
from cvray.robustness.config import check_severities, parse_severities

__all__ = ["CalibrateConfig", "METHODS", "PolicyConfig"]

#: the calibrators ``calibrate.methods`` may name (``cvray.calibrate.calibrators.CALIBRATOR_KINDS``)
METHODS = ("temperature", "platt", "isotonic")


class PolicyConfig(CvrayModel):
    """``calibrate.policy``: the act / observe / abstain targets (docs/calibrate.md, "Decision policy").

    Set both targets (``--policy act_precision=0.9,observe_recall=0.8``) to choose a policy."""

    act_precision: float | None = Field(None, gt=0.0, le=1.0, description="precision the acted detections of "
                                        "each class must reach on the fit split (t_act: the lowest such threshold)")
    observe_recall: float | None = Field(None, gt=0.0, le=1.0, description="recall act + observe must reach "
                                         "(t_observe: the highest such threshold, <= t_act)")
    min_support: int = Field(10, ge=1, description="detections at or above t_act needed on the fit split (else "
                             "the class never acts, stated)")
    scores: Literal["raw", "calibrated"] = Field(
        "raw", description="which scores the thresholds apply to: raw, or after the saved calibrator "
        "(calibrate.save); predict must then apply that calibrator")

    @model_validator(mode="after")
    def _both(self):
        if (self.act_precision is None) != (self.observe_recall is None):
            raise ValueError("a decision policy needs both act_precision and observe_recall")
        return self

    @property
    def enabled(self) -> bool:
        return self.act_precision is not None


class CalibrateConfig(CvrayModel):
    iou_thr: float = Field(0.5, gt=0.0, le=1.0, description="IoU at which a detection is a TP (COCO rule, "
                           "class-aware, one-to-one)")
    score_thr: float = Field(0.0, ge=0.0, le=1.0, description="detections scoring below are dropped before "
                             "matching (on top of predict.postprocess.score_threshold)")
    ece_bins: int = Field(10, ge=1, description="equal-width confidence bins of ECE")
    dece_bins: int = Field(5, ge=1, description="bins per dimension of D-ECE (confidence, cx, cy, w, h jointly)")
    laece_bins: int = Field(25, ge=1, description="confidence bins of LaECE (per class, then averaged)")
    methods: list[str] = Field(default_factory=lambda: list(METHODS),
                               description="calibrators fitted: temperature | platt | isotonic | all")
    save: str | None = Field(None, description="the method saved as <run>/calibrator.json "
                             "(default: the first of methods)")
    per_class: bool = Field(False, description="one calibrator per class (the global fit for classes with "
                            "fewer than min_per_class detections or only TPs / only FPs)")
    min_per_class: int = Field(50, ge=1)
    fit_split: str = Field("val", description="the split the calibrators are fitted on")
    eval_split: str = Field("test", description="the split they are evaluated on; when the dataset has no "
                            "such split, the fit split is halved (see docs/calibrate.md)")
    corruptions: list[str] = Field(default_factory=list, description="corruption slices of the eval split: "
                                   "benchmark | holdout | all | extras | names (default: none, clean only)")
    severities: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5])
    seed: int | None = Field(None, description="corruption seed (default: the config's seed)")
    max_images: int | None = Field(None, ge=1, description="the first N images of each split (sorted by id)")
    diagrams: Literal["clean", "all", "none"] = Field(
        "clean", description="reliability diagrams for the clean eval slice, every slice, or none")
    batch_size: int = Field(4, ge=1)
    workers: int | None = Field(None, ge=1, description="model actors (default: as many as fit)")
    cpus_per_worker: float = Field(1.0, gt=0)
    gpus_per_worker: float | None = Field(None, ge=0, description="default: 1 when the cluster has GPUs")
    torch_threads: int | None = Field(1, ge=1)
    max_retries: int = Field(3, ge=0, description="times a slice is retried after its worker died")
    policy: PolicyConfig = Field(default_factory=PolicyConfig, description="act / observe / abstain targets: "
                                 "per-class thresholds chosen on the fit split, written as <run>/policy.json")

    @field_validator("corruptions", "methods", mode="before")
    @classmethod
    def _split(cls, v):
        return [s.strip() for s in v.split(",") if s.strip()] if isinstance(v, str) else v

    @field_validator("methods")
    @classmethod
    def _methods(cls, v):
        out: list[str] = []
        for m in v:
            for k in (METHODS if m == "all" else (m,)):
                if k not in METHODS:
                    raise ValueError(f"unknown calibration method {k!r}; known: {', '.join(METHODS)}, all")
                if k not in out:
                    out.append(k)
        if not out:
            raise ValueError("at least one calibration method")
        return out

    @field_validator("severities", mode="before")
    @classmethod
    def _range(cls, v):
        return parse_severities(v)

    @field_validator("severities")
    @classmethod
    def _check(cls, v):
        return check_severities(v)

    @model_validator(mode="after")
    def _saved(self):
        if self.save is not None and self.save not in self.methods:
            raise ValueError(f"save={self.save!r} is not one of the fitted methods {self.methods}")
        return self

    @property
    def saved_method(self) -> str:
        return self.save or self.methods[0]
