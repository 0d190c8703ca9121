"""Config sections: each stage's own typed section, no dead keys, and a section that fails to
import is an error naming its module (never a silently missing section)."""
from __future__ import annotations

import pytest

import cvray.config as config
from cvray.config import ConfigError, SectionImportError, load_config


def test_a_section_that_fails_to_import_names_its_module(monkeypatch):
    monkeypatch.setitem(config._SECTIONS, "broken", "cvray.no_such_stage.config:BrokenConfig")
    config.experiment_model.cache_clear()
    try:
        with pytest.raises(SectionImportError, match="'broken'.*cvray.no_such_stage.config"):
            load_config(None, [])
    finally:
        monkeypatch.delitem(config._SECTIONS, "broken")
        config.experiment_model.cache_clear()
    assert load_config(None, []).seed == 0


@pytest.mark.parametrize("key", ["data.train=x.json", "data.val=x.json", "data.test=x.json",
                                 "eval.semantic.num_classes=3", "eval.instance.match_iou=0.4",
                                 "eval.seg_post.min_area=3", "robustness.x=1"])
def test_dead_keys_are_gone(key):
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(None, [key])


def test_inference_takes_its_model_from_predict_model():
    cfg = load_config(None, ["predict.model.arch=retinanet", "predict.model.num_classes=5"])
    assert cfg.predict.model.arch == "retinanet" and cfg.predict.model.num_classes == 5
    assert cfg.train.model.arch != "retinanet" or cfg.train.model.num_classes != 5
    assert cfg.track.diagnostics.occlusion_visibility == 0.5  # read by `cvray track eval --diagnostics`
