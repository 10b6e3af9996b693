"""The Examples sections of the public docstrings run and print what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import dehaze

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(dehaze.__path__, "dehaze.")
    if "._kernels" not in info.name and not info.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"


def test_the_package_docstring_examples():
    assert doctest.testmod(dehaze).failed == 0


def test_every_public_name_exists():
    missing = [name for name in dehaze.__all__ if not hasattr(dehaze, name)]
    assert not missing, f"names in dehaze.__all__ that dehaze does not define: {missing}"
