"""Modules imported on first use, so that ``import dehaze`` stays light.

``import dehaze`` must not pay for what a session may never use: Numba (about 0.25 s to
import; the kernel modules import it through :mod:`dehaze._jit`) and OpenCV (about
0.13 s). The public modules therefore bind these modules as :class:`LazyModule`
placeholders; the real import happens at the first attribute access (the first kernel
call, the first OpenCV call), from any thread (Python's import lock serialises it).
For type checkers the same names are bound by a plain import under ``TYPE_CHECKING``::

    if TYPE_CHECKING:
        from dehaze._kernels import clear as _ck
    else:
        _ck = lazy_module("dehaze._kernels.clear")

``tests/test_startup.py`` checks in a fresh process that ``import dehaze`` loads neither.
"""

from __future__ import annotations

import importlib
import types
from typing import Any

__all__ = ["LazyModule", "lazy_module"]


class LazyModule(types.ModuleType):
    """A placeholder that imports the module ``name`` when an attribute is first read."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.__dict__["_lazy_module"] = None

    def __getattr__(self, attr: str) -> Any:
        # called only for names not set on the placeholder itself: forward to the module
        module = self.__dict__["_lazy_module"]
        if module is None:
            module = importlib.import_module(self.__name__)
            self.__dict__["_lazy_module"] = module
        return getattr(module, attr)

    def __repr__(self) -> str:
        state = "imported" if self.__dict__["_lazy_module"] is not None else "not imported yet"
        return f"<lazy module {self.__name__!r} ({state})>"


def lazy_module(name: str) -> Any:
    """Return ``name`` itself if it is already imported, else a :class:`LazyModule` for it."""
    import sys

    loaded = sys.modules.get(name)
    return loaded if loaded is not None else LazyModule(name)
