import pytest
import yaml

from cvray.config import ConfigError, apply_overrides, load_config


def test_defaults_and_overrides_are_typed():
    cfg = load_config(None, ["seed=7", "storage.root=s3://bucket/runs", "synth.image_size=[64, 96]"])
    assert cfg.seed == 7
    assert cfg.storage.root == "s3://bucket/runs"
    assert cfg.synth.image_size == (64, 96)
    assert cfg.ray.dashboard_host == "127.0.0.1"


def test_yaml_file_then_overrides(tmp_path):
    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump({"name": "x", "seed": 1, "synth": {"images": 10}}))
    cfg = load_config(p, ["synth.images=12"])
    assert (cfg.name, cfg.seed, cfg.synth.images) == ("x", 1, 12)


@pytest.mark.parametrize("override, needle", [
    (["seed=abc"], "seed: expected int"),
    (["synth.images=many"], "synth.images: expected int"),
    (["storage.rooot=/x"], "storage.rooot: unknown key"),
    (["nosuch.key=1"], "nosuch: unknown key"),
    (["synth.images=-3"], "synth.images"),
])
def test_bad_overrides_name_key_and_type(override, needle):
    with pytest.raises(ConfigError) as err:
        load_config(None, override)
    assert needle in str(err.value)


def test_unknown_key_in_file_names_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("ray:\n  adress: x\n")
    with pytest.raises(ConfigError) as err:
        load_config(p)
    assert "ray.adress: unknown key" in str(err.value) and str(p) in str(err.value)


def test_override_syntax_errors():
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides({}, ["seed"])
    with pytest.raises(ConfigError, match="is a value, not a section"):
        apply_overrides({"seed": 1}, ["seed.x=2"])


def test_yaml_is_safe_loaded(tmp_path):
    p = tmp_path / "evil.yaml"
    p.write_text("seed: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)


def test_config_is_immutable_and_secrets_redacted():
    cfg = load_config(None, ["storage.secret_access_key=hunter2"])
    with pytest.raises(Exception):
        cfg.seed = 3  # frozen
    dumped = cfg.model_dump(mode="json")
    assert "hunter2" not in str(dumped)
