"""Declarative alert rules over the drift rows of one closed window.

Why rules that combine signals: a single feature crossing PSI > 0.2 is often harmless (a sunny
afternoon moves mean luma); an alert worth a page is one whose cause and effect agree, e.g. the
sharpness falls *and* the model's confidence falls in the same window. A :class:`Signal` names a
feature, the direction its current median (or rate) must move relative to the reference, and the
PSI (and optionally KS p) it must pass; a :class:`Rule` fires when all of ``all_of``, at least one
of ``any_of`` (when given) and none of ``none_of`` hold. The rate limit (``cooldown_windows`` /
``cooldown_s``) is applied by :class:`cvray.drift.monitor.DriftMonitor`, which holds the state.

Direction note: ``laplacian_var`` is sharpness, so "blur rises" is ``Signal("laplacian_var",
"down")``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from cvray.drift.stats import PSI_SIGNIFICANT

__all__ = ["DIRECTIONS", "Signal", "Rule", "evaluate_rule", "DEFAULT_RULES"]

DIRECTIONS = ("up", "down", "any")


@dataclass(frozen=True)
class Signal:
    """``feature`` shifted (PSI > ``psi_min``; KS p < ``ks_pvalue_max`` when set) in ``direction``.

    The KS bar applies to continuous rows only (a categorical row has no KS: PSI alone decides).
    Why both: PSI over a window of n frames is biased up by its noise floor (B - 1)(1/n + 1/m),
    0.12 at n = m = 150, and its spread around it reaches 0.2 on unshifted data; KS at p < 0.01
    keeps such windows quiet while a real shift passes both by far."""

    feature: str
    direction: str = "any"
    psi_min: float = PSI_SIGNIFICANT
    ks_pvalue_max: float | None = None

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"Signal({self.feature!r}): direction must be one of {DIRECTIONS}, "
                             f"got {self.direction!r}")
        if not self.psi_min >= 0:
            raise ValueError(f"Signal({self.feature!r}): psi_min must be >= 0, got {self.psi_min!r}")

    def holds(self, row: Mapping[str, Any] | None) -> bool:
        """Whether the drift ``row`` of this feature meets the signal (False when it is missing)."""
        if row is None or row.get("psi") is None or not row["psi"] > self.psi_min:
            return False
        if self.ks_pvalue_max is not None and row.get("kind", "continuous") == "continuous" and not (
                row.get("ks_pvalue") is not None and row["ks_pvalue"] < self.ks_pvalue_max):
            return False
        if self.direction == "any":
            return True
        ref, cur = row.get("reference_stat"), row.get("current_stat")
        if ref is None or cur is None:
            return False
        return cur > ref if self.direction == "up" else cur < ref


@dataclass(frozen=True)
class Rule:
    """A named combination of signals with a rate limit (at most one alert per ``cooldown_windows``
    windows and, when set, per ``cooldown_s`` seconds, per source)."""

    name: str
    all_of: tuple[Signal, ...] = ()
    any_of: tuple[Signal, ...] = ()
    none_of: tuple[Signal, ...] = ()
    cooldown_windows: int = 3
    cooldown_s: float | None = None
    message: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "all_of", tuple(self.all_of))
        object.__setattr__(self, "any_of", tuple(self.any_of))
        object.__setattr__(self, "none_of", tuple(self.none_of))
        if not self.all_of and not self.any_of:
            raise ValueError(f"Rule {self.name!r} needs at least one signal in all_of or any_of")
        if isinstance(self.cooldown_windows, bool) or not isinstance(self.cooldown_windows, int) \
                or self.cooldown_windows < 1:
            raise ValueError(f"Rule {self.name!r}: cooldown_windows must be an integer >= 1, "
                             f"got {self.cooldown_windows!r}")
        if self.cooldown_s is not None and not self.cooldown_s >= 0:
            raise ValueError(f"Rule {self.name!r}: cooldown_s must be >= 0 or None, got {self.cooldown_s!r}")


def _evidence(sig: Signal, row: Mapping[str, Any]) -> dict[str, Any]:
    return {"feature": sig.feature, "direction": sig.direction, "psi": row.get("psi"),
            "ks_pvalue": row.get("ks_pvalue"), "reference_stat": row.get("reference_stat"),
            "current_stat": row.get("current_stat")}


def evaluate_rule(rule: Rule, rows_by_feature: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]] | None:
    """The evidence (one dict per signal that held) when ``rule`` fires on a window, else None."""
    # 1. every all_of signal holds; 2. one any_of signal holds (if any are given); 3. no none_of
    if not all(s.holds(rows_by_feature.get(s.feature)) for s in rule.all_of):
        return None
    hit_any = [s for s in rule.any_of if s.holds(rows_by_feature.get(s.feature))]
    if rule.any_of and not hit_any:
        return None
    if any(s.holds(rows_by_feature.get(s.feature)) for s in rule.none_of):
        return None
    return [_evidence(s, rows_by_feature[s.feature]) for s in (*rule.all_of, *hit_any)]


DEFAULT_RULES: tuple[Rule, ...] = (
    # a JPEG quality drop also lowers sharpness; "compression" explains that case, so no blur alert
    Rule("blur", all_of=(Signal("laplacian_var", "down"),), none_of=(Signal("jpeg_quality", "down"),),
         message="sharpness (Laplacian variance) fell: defocus, motion blur, fog or a dirty lens"),
    Rule("low_light", all_of=(Signal("mean_luma", "down"),),
         message="mean luma fell: night, under-exposure or a failing light"),
    Rule("noise", all_of=(Signal("noise_sigma", "up"),),
         message="noise sigma rose: low light gain, sensor or transmission noise"),
    Rule("compression", all_of=(Signal("jpeg_quality", "down"),),
         message="JPEG quality fell: a new encoder setting or a transcoding hop"),
    Rule("confidence_drop_with_blur",
         all_of=(Signal("frame_confidence", "down"), Signal("laplacian_var", "down")),
         message="model confidence fell together with sharpness: blur is hurting the detector"),
    Rule("confidence_drop", all_of=(Signal("frame_confidence", "down"),),
         none_of=(Signal("laplacian_var", "down"), Signal("mean_luma", "down"), Signal("noise_sigma", "up")),
         message="model confidence fell with no image-quality cause: possible concept or label shift"),
    Rule("abstention", all_of=(Signal("abstention", "up"),),
         message="more detections abstained: the model is unsure of more of what it sees"),
    Rule("class_mix", all_of=(Signal("class_mix", "any"),),
         message="the predicted class mix moved: label shift (or a new scene)"),
    Rule("empty_frames", all_of=(Signal("empty_frames", "up"),),
         message="more frames without any detection: occlusion, camera moved, or the model fails"),
    Rule("frame_drops", all_of=(Signal("frame_drops", "up"),),
         message="more dropped frames: the stream or the decoder cannot keep up"),
)
