"""The package's public face (``purchasing_power.__all__``)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import purchasing_power


@pytest.mark.parametrize("name", purchasing_power.__all__)
def test_every_public_name_is_its_modules_own(name: str) -> None:
    home = importlib.import_module(f"purchasing_power.{purchasing_power._HOMES[name]}")
    assert getattr(purchasing_power, name) is getattr(home, name)


def test_the_public_names_are_the_ones_with_a_home() -> None:
    assert sorted(purchasing_power.__all__) == sorted(purchasing_power._HOMES)
    assert set(purchasing_power.__all__) <= set(dir(purchasing_power))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        _ = purchasing_power.nothing_here


@pytest.mark.parametrize("module", ["generate", "publish", "explain"])
def test_modules_named_like_a_verb_stay_modules(module: str) -> None:
    imported = importlib.import_module(f"purchasing_power.{module}")
    assert getattr(purchasing_power, module) is imported


def test_importing_the_package_loads_no_heavy_library() -> None:
    code = (
        "import sys, purchasing_power, purchasing_power.warehouse; "
        "print(sorted({'lightgbm', 'onnx', 'onnxruntime', 'scipy'} & set(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"
