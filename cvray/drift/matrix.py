"""The shift matrix: expected condition x shift type x the features and metrics that detect it.

Shift types follow Moreno-Torres et al. 2012 ("A unifying view on dataset shift in
classification"): *covariate* shift moves p(x) with p(y|x) fixed (the image looks different, the
right answer is the same), *label* (prior) shift moves p(y) with p(x|y) fixed (other objects are
in front of the camera), *concept* shift moves p(y|x) (the same pixels now deserve another
answer). Covariate shift is visible in the image features; label shift only in the predictions
(the class mix); concept shift is invisible without labels -- the proxies can only hint at it --
so its row says what audit it needs. ``corruptions`` name the :mod:`cvray.robustness.corruptions`
that synthesise the condition (and the tests that show the rule fires on it).

Plain tuples of dicts, so the report can render the table directly.
"""
from __future__ import annotations

__all__ = ["SHIFT_TYPES", "SHIFT_MATRIX"]

SHIFT_TYPES: tuple[str, ...] = ("covariate", "label", "concept")

SHIFT_MATRIX: tuple[dict[str, object], ...] = (
    {"condition": "night / low light", "shift_type": "covariate",
     "features": ("mean_luma", "luma_hist", "rms_contrast", "noise_sigma"),
     "metrics": ("frame_confidence", "empty_frames"), "rules": ("low_light", "noise"),
     "corruptions": ("low_light", "brightness")},
    {"condition": "blur / defocus / motion", "shift_type": "covariate",
     "features": ("laplacian_var", "noise_sigma", "rms_contrast"),
     "metrics": ("frame_confidence", "track_gaps"), "rules": ("blur", "confidence_drop_with_blur"),
     "corruptions": ("defocus_blur", "motion_blur", "gaussian_blur", "lens_smudge")},
    {"condition": "rain / fog / snow", "shift_type": "covariate",
     "features": ("rms_contrast", "colourfulness", "laplacian_var", "luma_hist"),
     "metrics": ("frame_confidence", "empty_frames"), "rules": ("blur",),
     "corruptions": ("rain", "fog", "snow", "frost")},
    {"condition": "sensor / transmission noise", "shift_type": "covariate",
     "features": ("noise_sigma", "laplacian_var"),
     "metrics": ("frame_confidence", "frame_detections"), "rules": ("noise",),
     "corruptions": ("gaussian_noise", "shot_noise", "impulse_noise")},
    {"condition": "compression / transcoding", "shift_type": "covariate",
     "features": ("jpeg_quality", "laplacian_var", "noise_sigma"),
     "metrics": ("frame_confidence",), "rules": ("compression", "blur"),
     "corruptions": ("jpeg_compression", "pixelate")},
    {"condition": "stream stalls / frame drops", "shift_type": "covariate",
     "features": ("frame_drops",), "metrics": ("track_lifetime", "track_gaps"),
     "rules": ("frame_drops",), "corruptions": ()},
    {"condition": "new camera angle / zoom", "shift_type": "covariate",
     "features": ("luma_hist", "colourfulness"),
     "metrics": ("frame_detections", "class_mix", "track_lifetime", "empty_frames"),
     "rules": ("class_mix", "empty_frames"), "corruptions": ()},
    {"condition": "new class mix (season, event, site)", "shift_type": "label",
     "features": (), "metrics": ("class_mix", "frame_detections", "empty_frames"),
     "rules": ("class_mix", "empty_frames"), "corruptions": ()},
    {"condition": "label definition change (new taxonomy, new annotation guide)", "shift_type": "concept",
     "features": (), "metrics": ("frame_confidence", "abstention"),
     "rules": ("confidence_drop", "abstention"), "corruptions": (),
     "note": "invisible to image features; proxies only hint at it -- needs a labelled audit sample"},
    {"condition": "new object appearance (new vehicle models, uniforms)", "shift_type": "concept",
     "features": ("colourfulness",), "metrics": ("frame_confidence", "abstention", "class_mix"),
     "rules": ("confidence_drop", "abstention"), "corruptions": (),
     "note": "confidence falls with no image-quality cause; confirm with a labelled audit sample"},
)
