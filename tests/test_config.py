"""The parts' configs share one base (core.config): presets, overrides, types, the JSON form."""

from __future__ import annotations

import json

import pytest

from talkstudio.core import presets
from talkstudio.core.config import PartConfig
from talkstudio.core.errors import CheckpointError, ConfigError, TalkstudioError
from talkstudio.core.head.config import HeadConfig
from talkstudio.core.presets import PRESET_NAMES, PRESETS, TRAIN_STAGE, Preset
from talkstudio.core.refiner.config import RefinerConfig
from talkstudio.core.stage1.config import Stage1Config
from talkstudio.core.subject import MODEL_PARTS
from talkstudio.core.torso.config import TorsoConfig

CONFIGS: dict[str, type[PartConfig]] = {
    "stage1": Stage1Config,
    "head": HeadConfig,
    "torso": TorsoConfig,
    "refiner": RefinerConfig,
}


def test_every_part_config_derives_from_the_base_and_names_its_part() -> None:
    assert (
        tuple(CONFIGS)
        == MODEL_PARTS
        == tuple(p.removeprefix("train ") for p in TRAIN_STAGE.values())
    )
    for part, cls in CONFIGS.items():
        assert issubclass(cls, PartConfig) and part == cls.PART
        assert set(cls.ARCHITECTURE) <= set(cls.setting_names())


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_every_preset_sets_what_it_says_and_keeps_the_rest(name: str) -> None:
    for part, cls in CONFIGS.items():
        cfg = cls.from_preset(name)
        changed = PRESETS[name].overrides(part)
        assert changed and all(getattr(cfg, k) == v for k, v in changed.items())
        default = cls()
        untouched = set(cls.setting_names()) - set(changed)
        assert all(getattr(cfg, k) == getattr(default, k) for k in untouched)
    with pytest.raises(TypeError):
        PRESETS[name].head["steps"] = 1  # read-only for everyone


def test_misspelt_keys_in_a_preset_or_an_override_are_errors(monkeypatch) -> None:
    with pytest.raises(ConfigError, match=r"unknown preset 'fast'; choose one of preview, paper"):
        HeadConfig.from_preset("fast")
    with pytest.raises(
        ConfigError, match=r"Stage1Config has no setting 'stepz'; did you mean 'steps'"
    ):
        Stage1Config.from_preset("preview", stepz=3)
    with pytest.raises(ConfigError, match=r"TorsoConfig has no setting 'zzz'; its settings are"):
        TorsoConfig.from_preset("paper", zzz=1)
    typo = Preset("typo", stage1={"save_evry": 10}, head={}, torso={"steps": 5}, refiner={})
    monkeypatch.setattr(presets, "PRESETS", {**PRESETS, "typo": typo})
    with pytest.raises(
        ConfigError, match=r"preset 'typo': Stage1Config has no setting 'save_evry'"
    ):
        Stage1Config.from_preset("typo")
    assert TorsoConfig.from_preset("typo").steps == 5  # the part without the typo still builds
    with pytest.raises(ConfigError, match="unknown part 'neck'"):
        typo.overrides("neck")


def test_values_are_checked_when_a_config_is_made() -> None:
    err = ConfigError("x")
    assert isinstance(err, ValueError) and isinstance(err, TalkstudioError)
    with pytest.raises(ConfigError, match=r"head setting steps = '9' is not a whole number"):
        HeadConfig(steps="9")
    with pytest.raises(ConfigError, match=r"lr_mlp = True is not a number"):
        HeadConfig(lr_mlp=True)
    with pytest.raises(ConfigError, match=r"dcn_levels = \(1.5,\) is not a list of whole numbers"):
        TorsoConfig(dcn_levels=(1.5,))
    assert HeadConfig(lr_mlp=1).lr_mlp == 1  # an int is a number
    for cls in CONFIGS.values():
        with pytest.raises(ConfigError, match=r"steps must be at least 1, got -5"):
            cls.from_preset("preview", steps=-5)
        with pytest.raises(ConfigError, match=r"steps must be at least 1, got 0"):
            cls().replace(steps=0)
        with pytest.raises(ConfigError, match="checkpoint_every must be at least 1"):
            cls(checkpoint_every=0)
    with pytest.raises(ConfigError, match="has no setting 'size'"):
        TorsoConfig().replace(size=3)
    assert TorsoConfig().replace(steps=7).steps == 7
    with pytest.raises(ConfigError, match="audio_kernel must be odd"):
        Stage1Config(audio_kernel=4)


def test_the_json_form_round_trips_and_tolerates_a_later_version() -> None:
    for cls in CONFIGS.values():
        for name in PRESET_NAMES:
            cfg = cls.from_preset(name)
            assert cls.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
        newer = cls().to_dict() | {"a_later_setting": 1}
        assert cls.from_dict(newer) == cls()  # unknown keys: ignored
        assert cls.from_dict({"seed": 4}) == cls(seed=4)  # missing keys: defaults
        with pytest.raises(CheckpointError, match=rf"saved {cls.PART} config is malformed"):
            cls.from_dict({"steps": "many"})
    torso = TorsoConfig(dcn_levels=(1, 3))
    assert torso.to_dict()["dcn_levels"] == [1, 3]
    assert TorsoConfig.from_dict(torso.to_dict()).dcn_levels == (1, 3)
    assert TorsoConfig(base_width=16).architecture()["base_width"] == 16
    assert set(Stage1Config().architecture()) == set(Stage1Config.ARCHITECTURE)
