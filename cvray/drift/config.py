"""Typed drift options of ``cvray predict`` / ``cvray track`` (``predict.drift.*`` / ``track.drift.*``).

Off by default. ``--drift`` turns it on with each source's first window as its reference;
``--drift-reference RUN`` (``drift.reference``) compares every source with the reference windows an
earlier, trusted run wrote (its ``drift_reference.json``) and implies ``--drift``.
"""
from __future__ import annotations

from pydantic import Field, model_validator

from cvray.config import CvrayModel
from cvray.drift import stats

__all__ = ["DriftConfig"]


class DriftConfig(CvrayModel):
    """Windows, thresholds and the reference of drift monitoring."""

    enabled: bool = Field(False, description="compute drift features, windows and alerts (--drift)")
    reference: str | None = Field(
        None, description="a run (folder/URI) or drift_reference.json whose reference windows each source is "
        "compared with (--drift-reference; implies enabled); default: each source's own first window")
    window_frames: int | None = Field(
        500, ge=1, description="frames per window (500 keeps the no-shift PSI floor, 0.036, well under 0.1)")
    window_s: float | None = Field(None, gt=0, description="seconds per window (video time); whichever closes first")
    min_samples: int = Field(50, ge=2, description="fewest values of a feature before PSI / KS are computed")
    psi_threshold: float = Field(stats.PSI_SIGNIFICANT, gt=0, description="PSI above this is a shift")
    ks_pvalue: float | None = Field(
        stats.KS_PVALUE, gt=0, lt=1, description="KS p below this: the samples differ; an alert's continuous "
        "signals need both (None: PSI alone, noisy on short windows)")

    @model_validator(mode="after")
    def _window(self) -> "DriftConfig":
        if self.window_frames is None and self.window_s is None:
            raise ValueError("drift needs window_frames or window_s")
        return self

    @property
    def active(self) -> bool:
        return self.enabled or bool(self.reference)

    def monitor_config(self, fps: float | None = None):
        from cvray.drift.monitor import MonitorConfig

        return MonitorConfig(window_frames=self.window_frames, window_s=self.window_s, fps=fps,
                             psi_threshold=self.psi_threshold, ks_pvalue=self.ks_pvalue or stats.KS_PVALUE,
                             min_samples=self.min_samples)
