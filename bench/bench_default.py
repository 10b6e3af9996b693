"""The default method (ClearHaze) beside the plain dark-channel pipeline, same run.

ClearHaze's target is at most 1.3x the plain DCP pipeline's time at 1080p (issue 11); both
are timed on the same image in the same run, with every output plane (the call as users
make it) and with the image only (``outputs=()``, what the command line asks for).
"""

from __future__ import annotations

import pytest

import dehaze

from conftest import run

METHODS = {"clear": dehaze.ClearHaze(), "dcp": dehaze.DarkChannelPrior()}


@pytest.mark.parametrize("impl", ("clear", "dcp", "clear-image-only", "dcp-image-only"))
def test_default_method(benchmark, image, size, impl):
    benchmark.group = f"default method {size}"
    name, _, only = impl.partition("-")
    method = METHODS[name]
    if only:
        func = lambda: method(image, outputs=())  # noqa: E731
    else:
        func = lambda: method(image)  # noqa: E731
    run(benchmark, func)
