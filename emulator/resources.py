"""Data files that travel inside the package, read with :mod:`importlib.resources`.

The repository keeps them at its top level (``grammar/``, ``objects/``); ``pyproject.toml`` maps those
folders to the packages ``emulator.grammar`` and ``emulator.objects``, so a wheel holds
``emulator/grammar/at.lark`` and ``emulator/objects/*.xml`` and an editable checkout reads the
folders in place. Nothing here builds a path relative to the source tree.
"""
from __future__ import annotations

from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable


def grammar_text() -> str:
    """The Lark grammar of the AT command line (``emulator.grammar/at.lark``)."""
    return (files("emulator.grammar") / "at.lark").read_text(encoding="utf-8")


def builtin_models_root() -> Traversable:
    """The package of the built-in DDF models (``emulator.objects``); a :class:`pathlib.Path` when
    the package is on a file system."""
    return _objects_root()


@cache
def _objects_root() -> Traversable:          # where a package lies does not change in a process
    return files("emulator.objects")


def builtin_model_files() -> list[Traversable]:
    """The built-in DDF models (``emulator.objects/*.xml``), sorted by file name."""
    root = builtin_models_root()
    return sorted((f for f in root.iterdir() if f.name.lower().endswith(".xml") and f.is_file()),
                  key=lambda f: f.name)


def testing_file(*parts: str) -> Traversable:
    """A data file of the test tooling (e.g. ``testing_file("java", "X.java")``)."""
    return files("emulator.testing").joinpath(*parts)
