"""device.toml: the documented example is the defaults, and every mistake names the file and the key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import tomllib

from edgeemo.device.config import DeviceConfig, from_dict, load_config, override
from edgeemo.errors import EdgeemoError

EXAMPLE = Path(__file__).resolve().parents[1] / "device" / "device.toml"


def test_documented_example_is_exactly_the_defaults():
    assert load_config(EXAMPLE) == DeviceConfig()


def test_every_key_is_documented_in_the_example():
    documented = tomllib.loads(EXAMPLE.read_text())
    for table in dataclasses.fields(DeviceConfig):
        keys = {f.name for f in dataclasses.fields(getattr(DeviceConfig(), table.name))}
        assert set(documented[table.name]) == keys, table.name


def test_empty_file_is_a_working_config(tmp_path):
    path = tmp_path / "device.toml"
    path.write_text("")
    assert load_config(path) == DeviceConfig()


def test_values_are_read_and_ints_accepted_where_natural(tmp_path):
    path = tmp_path / "device.toml"
    path.write_text('[camera]\nsource = 1\nfps = 15\n[fusion.weights]\nface = 2\n[http]\nport = 9000\n')
    cfg = load_config(path)
    assert cfg.camera.source == "1" and cfg.camera.fps == 15.0
    assert cfg.fusion.weights == {"face": 2.0, "voice": 1.0}  # the other modality keeps its default
    assert cfg.http.port == 9000


@pytest.mark.parametrize(
    "text, match",
    [
        ("[camera]\nfps = 'fast'\n", r"\[camera\] fps must be a number, got 'fast'"),
        ("[camera]\nresolution = 3\n", r"unknown key \[camera\] resolution"),
        ("[speaker]\nvolume = 3\n", r"unknown table \[speaker\]"),
        ("[http]\nenabled = 'yes'\n", r"\[http\] enabled must be true or false"),
        ("[http]\nport = 80.5\n", r"\[http\] port must be an integer"),
        ("[output]\nstdout = 'xml'\n", r"\[output\] stdout must be one of json, text, off"),
        ("[pipeline]\nhop_s = 0\n", r": pipeline hop_s must be > 0"),
        ("[fusion.weights]\ngait = 1.0\n", r": fusion weights: unknown modalities \['gait'\]"),
        ("camera = 3\n", r"camera must be a table"),
        ("[camera\nfps = 3\n", r"not valid TOML"),
    ],
)
def test_mistakes_name_the_file_and_the_key(tmp_path, text, match):
    path = tmp_path / "device.toml"
    path.write_text(text)
    with pytest.raises(EdgeemoError, match=match) as exc:
        load_config(path)
    assert str(exc.value).startswith(str(path))


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(EdgeemoError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_overrides_win_and_are_validated():
    cfg = from_dict({"http": {"port": 9000}, "camera": {"source": "video.mp4"}})
    cfg = override(cfg, http__port=9100, camera__source=None, microphone__enabled=False)
    assert cfg.http.port == 9100 and cfg.camera.source == "video.mp4" and not cfg.microphone.enabled
    with pytest.raises(EdgeemoError, match=r"\[log\] level must be one of"):
        override(cfg, log__level="loud")
