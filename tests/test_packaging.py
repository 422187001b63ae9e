"""The extras a device installs: no TensorFlow on a Pi, and `make demo` needs no compiler."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

EXTRAS = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def resolve(extra: str) -> set[str]:
    """Distribution names an extra pulls in, nested ``edgeemo[...]`` extras expanded."""
    names: set[str] = set()
    for req in EXTRAS[extra]:
        name = re.split(r"[<>=;!\[ ]", req, maxsplit=1)[0].strip().lower()
        if name == "edgeemo":
            for inner in re.search(r"\[(.*?)\]", req).group(1).split(","):
                names |= resolve(inner.strip())
        else:
            names.add(name)
    return names


def test_the_device_extra_has_runtimes_and_the_microphone_but_no_tensorflow():
    device = resolve("device")
    assert {"ai-edge-litert", "onnxruntime", "pyaudio"} <= device
    assert not device & {"tensorflow", "tensorflow-cpu", "keras", "tf2onnx", "librosa"}


def test_the_runtime_extra_needs_no_compiler():
    runtime = resolve("runtime")
    assert {"ai-edge-litert", "onnxruntime"} <= runtime and "pyaudio" not in runtime
    assert resolve("device") - runtime == {"pyaudio"}


def test_dev_installs_every_stage():
    assert {"tensorflow-cpu", "tf2onnx", "pyaudio", "pytest", "hypothesis"} <= resolve("dev")


PYPROJECT = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())


def test_every_folder_that_ships_files_is_a_listed_package():
    # setuptools warns ("Package 'edgeemo.models.face' is absent from the packages configuration") for any other
    setuptools = PYPROJECT["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    root = Path(__file__).parents[1]
    for name, folder in setuptools["package-dir"].items():
        for sub in (root / folder).rglob("*"):
            if sub.is_dir() and sub.name != "__pycache__" and any(f.is_file() for f in sub.iterdir()):
                assert f"{name}.{'.'.join(sub.relative_to(root / folder).parts)}" in listed, sub


def test_the_licence_is_an_spdx_string():
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
