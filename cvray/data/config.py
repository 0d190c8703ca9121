"""The data stage's config sections: ``data`` (the dataset a command reads by default) and
``synth`` (the synthetic generator of ``cvray data synth`` and ``cvray demo``)."""
from __future__ import annotations

from pydantic import Field

from cvray.config import CvrayModel

__all__ = ["DataConfig", "SynthConfig"]


class SynthConfig(CvrayModel):
    # 240 images (~144 train / 48 val / 48 test): the generator is cheap (~3 s), and a model
    # trained from scratch generalises from more distinct images, not from more epochs over few
    images: int = Field(240, ge=1)
    videos: int = Field(2, ge=0)
    image_size: tuple[int, int] = (128, 128)
    frames: int = Field(40, ge=2)
    objects_per_video: int = Field(6, ge=1)


class DataConfig(CvrayModel):
    """The dataset a command trains on when ``--dataset`` is not given (splits are found as
    ``annotations/instances_<split>.json`` under it; ``train.train_split`` / ``val_split`` pick)."""

    root: str | None = Field(None, description="dataset root URI (COCO layout: images/, annotations/)")
