"""RobustDCP and the colour attenuation prior against whole-pipeline float64 references.

The references (tests/reference.py: ``robust_dcp_ref``, ``cap_ref``) are written from the
papers' formulas and the documented border and tie rules with SciPy and plain loops; only
the public API of dehaze is called here, so the tests hold through refactoring.

Tolerances (absolute, on the [0, 1] scale): float64 inputs 1e-9 on every field (the fast
code computes in float64 too; the rest is summation order). float32 and integer inputs
are computed in float32: transmission 2e-5, image 2e-4 (the 1 / max(t, t0) of recovery
amplifies t's float32 rounding by at most 1 / t0). Integer (uint8) outputs must be the
rounding of a value within that tolerance: the nearest integer to the float64 result, or
its neighbour only where that result lies within 2e-4 of a rounding boundary
(``assert_rounded_equal``).
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import numpy as np
import pytest

import dehaze
from dehaze.io import imread

from helpers import random_image
from reference import (
    assert_rounded_equal,
    cap_ref,
    luma_ref,
    quadtree_light_ref,
    robust_dcp_ref,
    to_float64,
)

FIELDS = ("image", "transmission", "atmospheric_light", "depth")


def _atol(dtype: np.dtype, field: str) -> float:
    if np.dtype(dtype) == np.float64:
        return 1e-9
    return 2e-4 if field == "image" else 2e-5


def compare(result: dehaze.DehazeResult, want: dict, dtype: np.dtype) -> None:
    for field in FIELDS:
        got = getattr(result, field)
        if field == "image" and np.dtype(dtype).kind == "u":
            assert got.dtype == dtype
            assert_rounded_equal(got, want["image"], _atol(dtype, "image"))
            continue
        np.testing.assert_allclose(
            np.asarray(got, dtype=np.float64),
            want[field],
            atol=_atol(dtype, field),
            rtol=0,
            err_msg=field,
        )


def hazy_scene(rng, shape, sky_rows=0, dtype=np.float64, gray=False):
    """A random clear scene under depth-ramped haze; an optional flat sky band on top."""
    h, w = shape
    clear = rng.random((h, w, 3)) * 0.8
    t = np.exp(-np.linspace(0.2, 2.0, h))[:, None, None] * np.ones((1, w, 1))
    hazy = clear * t + np.array([0.88, 0.9, 0.93]) * (1 - t)
    hazy[:sky_rows] = (0.88, 0.9, 0.93)
    if gray:
        hazy = hazy @ np.array([0.299, 0.587, 0.114])
    if np.dtype(dtype).kind == "u":
        return np.rint(hazy * np.iinfo(dtype).max).astype(dtype)
    return hazy.astype(dtype)


# --- defaults -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "ref"), [(dehaze.RobustDCP, robust_dcp_ref), (dehaze.ColorAttenuationPrior, cap_ref)]
)
def test_reference_defaults_equal_the_method_defaults(method, ref):
    params = {k: p.default for k, p in inspect.signature(ref).parameters.items() if k != "image"}
    assert params == dataclasses.asdict(method())


# --- RobustDCP --------------------------------------------------------------------------

ROBUST_CASES = {
    "he-guard": {"guided_radius": 9, "patch_radius": 3},
    "he-noguard": {"guided_radius": 9, "patch_radius": 3, "guard_radius": 0},
    "quadtree": {"guided_radius": 9, "patch_radius": 3, "light": "quadtree", "guard_radius": 3},
    "quadtree-noguard": {
        "guided_radius": 9,
        "patch_radius": 2,
        "light": "quadtree",
        "guard_radius": 0,
    },
    "fixed-k-amount": {
        "guided_radius": 7,
        "patch_radius": 2,
        "tolerance": 0.3,
        "sky_tolerance": None,
        "amount": 0.7,
        "t0": 0.15,
    },
    "no-tolerance-amount": {
        "guided_radius": 7,
        "patch_radius": 2,
        "tolerance": None,
        "amount": 0.6,
    },
    "fast-guided": {"guided_radius": 12, "patch_radius": 2, "subsample": 3, "eps": 1e-3},
    "paper-omega": {"guided_radius": 5, "patch_radius": 7, "omega": 0.8, "top_fraction": 0.001},
}


@pytest.mark.parametrize("case", sorted(ROBUST_CASES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.uint8])
@pytest.mark.parametrize(("shape", "gray"), [((46, 62), False), ((71, 40), True)])
def test_robust_dcp_matches_reference(rng, case, dtype, shape, gray):
    params = ROBUST_CASES[case]
    image = hazy_scene(rng, shape, dtype=dtype, gray=gray)
    result = dehaze.RobustDCP(**params)(image)
    want = robust_dcp_ref(image, **params)
    compare(result, want, image.dtype)
    np.testing.assert_allclose(
        result.dark_channel, want["dark_channel"], atol=_atol(dtype, "dark"), rtol=0
    )


@pytest.mark.parametrize("dtype", [np.float64, np.uint8])
@pytest.mark.parametrize("light", ["he", "quadtree"])
@pytest.mark.parametrize(
    ("sky_rows", "k_kind"), [(0, "low"), (25, "ramp"), (40, "sky")], ids=["nosky", "ramp", "sky"]
)
def test_robust_dcp_sky_adaptation_matches_reference(rng, dtype, light, sky_rows, k_kind):
    """The K ramp: no sky (K = tolerance), part sky (interpolated), all sky (sky_tolerance)."""
    image = hazy_scene(rng, (90, 80), sky_rows=sky_rows, dtype=dtype)
    params = {"guided_radius": 10, "patch_radius": 3, "light": light, "tolerance": 0.1}
    want = robust_dcp_ref(image, **params)
    low, high = dehaze.RobustDCP().sky_range
    # the scenes really exercise the three parts of the ramp
    assert {
        "low": want["sky_fraction"] <= low,
        "ramp": low < want["sky_fraction"] < high,
        "sky": want["sky_fraction"] >= high,
    }[k_kind], want["sky_fraction"]
    result = dehaze.RobustDCP(**params)(image)
    compare(result, want, image.dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.uint16])
def test_robust_dcp_custom_ramp_matches_reference(rng, dtype):
    # another ramp and K_sky, with the sky fraction inside it: K = 0.1 + w (0.35 − 0.1)
    image = hazy_scene(rng, (90, 80), sky_rows=19, dtype=dtype)
    params = {
        "guided_radius": 10,
        "patch_radius": 3,
        "tolerance": 0.1,
        "sky_tolerance": 0.35,
        "sky_range": (0.2, 0.9),
        "amount": 0.85,
    }
    want = robust_dcp_ref(image, **params)
    assert 0.2 < want["sky_fraction"] < 0.9 and 0.1 < want["tolerance"] < 0.35
    compare(dehaze.RobustDCP(**params)(image), want, image.dtype)


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (17, 5), (5, 17)])
def test_robust_dcp_tiny_images_match_reference(rng, shape):
    image = rng.random((*shape, 3)) * 0.6 + 0.3
    for params in ({}, {"light": "quadtree", "tolerance": 0.4, "amount": 0.5}):
        compare(dehaze.RobustDCP(**params)(image), robust_dcp_ref(image, **params), image.dtype)


def test_robust_dcp_large_banded_threads_match_reference(rng):
    # 150 rows are split into bands on two threads
    image = hazy_scene(rng, (150, 96), sky_rows=45)
    params = {"guided_radius": 15, "patch_radius": 4, "tolerance": 0.2}
    want = robust_dcp_ref(image, **params)
    for threads in (1, 2):
        with dehaze.num_threads(threads):
            compare(dehaze.RobustDCP(**params)(image), want, image.dtype)


# --- CAP ----------------------------------------------------------------------------------

CAP_CASES = {
    "default": {"guided_radius": 8},
    "color-guide": {"guided_radius": 6, "guide": "color", "eps": 1e-2},
    "beta-t0": {"guided_radius": 5, "beta": 1.7, "t0": 0.25, "patch_radius": 2},
    "amount": {"guided_radius": 8, "amount": 0.6},
    "tolerance": {"guided_radius": 8, "tolerance": 0.3},
    "tolerance-amount": {"guided_radius": 8, "tolerance": 0.15, "amount": 0.45, "t0": 0.2},
    "no-erosion": {"guided_radius": 3, "patch_radius": 0},
}


@pytest.mark.parametrize("case", sorted(CAP_CASES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.uint8])
@pytest.mark.parametrize(("shape", "gray"), [((46, 62), False), ((33, 20), True)])
def test_cap_matches_reference(rng, case, dtype, shape, gray):
    params = CAP_CASES[case]
    image = hazy_scene(rng, shape, dtype=dtype, gray=gray)
    result = dehaze.ColorAttenuationPrior(**params)(image)
    assert result.dark_channel is None
    compare(result, cap_ref(image, **params), image.dtype)


@pytest.mark.parametrize("shape", [(1, 1), (3, 2), (40, 7)])
def test_cap_tiny_and_random_images_match_reference(rng, shape):
    for dtype in (np.float64, np.uint8):
        image = random_image(rng, (*shape, 3), dtype)
        params = {"guided_radius": 60, "tolerance": 0.5, "amount": 0.8}
        compare(dehaze.ColorAttenuationPrior(**params)(image), cap_ref(image, **params), dtype)


def test_cap_tolerance_path_changes_the_result(rng):
    # the tolerance rule is not a no-op on a scene with pixels near A (else the
    # reference comparison above would not see it)
    image = hazy_scene(rng, (60, 50), sky_rows=15)
    plain = cap_ref(image, guided_radius=8)
    ruled = cap_ref(image, guided_radius=8, tolerance=0.3)
    assert np.abs(plain["transmission"] - ruled["transmission"]).max() > 0.1
    distance = np.abs(luma_ref(image) - luma_ref(plain["atmospheric_light"][None, None]))
    assert (distance < 0.3).mean() > 0.1


# --- real photos --------------------------------------------------------------------------

REAL_PHOTOS = ("shanghai.jpg", "fishers.jpg", "house.jpg")


@pytest.mark.data
@pytest.mark.parametrize("name", REAL_PHOTOS)
def test_methods_match_references_on_real_photos(data_dir: Path, name):
    photo = imread(data_dir / "real" / name)
    assert photo.dtype == np.uint8 and photo.ndim == 3
    for method, ref, params in (
        (dehaze.RobustDCP, robust_dcp_ref, {}),
        (dehaze.RobustDCP, robust_dcp_ref, {"light": "quadtree", "guided_radius": 30}),
        (dehaze.ColorAttenuationPrior, cap_ref, {}),
        (dehaze.ColorAttenuationPrior, cap_ref, {"guide": "color", "tolerance": 0.2}),
    ):
        compare(method(**params)(photo), ref(photo, **params), photo.dtype)
        as_float = to_float64(photo)
        compare(method(**params)(as_float), ref(as_float, **params), as_float.dtype)


def test_quadtree_ties_go_to_the_first_block():
    """Kim's search, documented tie rule: of equal scores the first block (TL, TR, BL, BR).

    The top quarters hold the same values (dyadic, so mean and std tie exactly) in another
    channel order: the chosen block shows in A.
    """
    image = np.full((32, 32, 3), 0.125)
    image[:16, :16] = (0.25, 0.5, 0.75)
    image[:16, 16:] = (0.75, 0.5, 0.25)
    for guard in (0, 3):
        light = dehaze.quadtree_atmospheric_light(image, min_size=16, guard_radius=guard)
        np.testing.assert_array_equal(light, (0.25, 0.5, 0.75))
        np.testing.assert_array_equal(quadtree_light_ref(image, 16, guard), light)
    # and through the method (its search uses min_size 16)
    result = dehaze.RobustDCP(light="quadtree", guard_radius=0)(image)
    np.testing.assert_array_equal(result.atmospheric_light, (0.25, 0.5, 0.75))
