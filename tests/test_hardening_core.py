"""Parameter hardening: values that used to give NaN or black output, or were accepted
although they are not numbers, are refused with a message naming the parameter."""

from __future__ import annotations

import numpy as np
import pytest

import dehaze
from dehaze._validate import MIN_EPS, MIN_T0, check_atmospheric_light, check_eps, check_real
from dehaze.guided import guided_filter_plane

from helpers import dcp_dehaze
from reference import guided_color_ref, guided_gray_ref

# --- atmospheric light ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "dtype"),
    [
        (1e-300, np.float32),  # 0 in float32: the all-NaN image of the issue
        (1e-40, np.float32),  # subnormal in float32: image / light overflows
        (1e-300, np.uint8),  # uint8 is processed in float32
        ([0.5, 1e-300, 0.5], np.float32),
        (5e-324, np.float64),
    ],
)
def test_light_must_be_positive_in_the_working_dtype(value, dtype):
    with pytest.raises(ValueError, match="atmospheric_light values must be at least"):
        check_atmospheric_light(value, 3, dtype)


def test_light_checked_after_the_cast_keeps_valid_values():
    tiny32 = float(np.finfo(np.float32).tiny)
    out = check_atmospheric_light(tiny32, 3, np.float32)
    assert out.dtype == np.float32 and np.all(out > 0)
    # 1e-300 is a valid float64 light
    out = check_atmospheric_light([1e-300, 0.5, 1.0], 3, np.float64)
    assert out.dtype == np.float64 and out[0] == 1e-300


@pytest.mark.parametrize(
    "value", ["0.9", True, np.bool_(True), [True, 0.5, 0.5], ["0.9", "0.9", "0.9"], b"1", None]
)
def test_light_refuses_strings_and_bools(value):
    with pytest.raises(TypeError, match="atmospheric_light"):
        check_atmospheric_light(value, 3, np.float32)


@pytest.mark.parametrize(
    "value", [0.5, np.float32(0.5), [0.5, 0.6, 0.7], np.array([0.5, 0.6, 0.7])]
)
def test_light_accepts_reals(value):
    out = check_atmospheric_light(value, 3, np.float32)
    assert out.shape == (3,) and out.dtype == np.float32


def test_dehaze_with_the_smallest_float32_light_is_finite(rng):
    # the smallest accepted light: the result must be finite (the transmission itself is
    # dcp's to clamp; see the report)
    img = (rng.random((40, 50, 3)) * 0.8 + 0.1).astype(np.float32)
    light = float(np.finfo(np.float32).tiny)
    result = dcp_dehaze(img, atmospheric_light=light, guided_radius=4)
    assert np.all(np.isfinite(result.image))


@pytest.mark.parametrize("value", ["0.9", True, None, [0.5]])
@pytest.mark.parametrize("name", ["eps", "t0"])
def test_real_checks_refuse_strings_and_bools(value, name):
    with pytest.raises(TypeError, match=name):
        check_real(value, name, low=0.0)


# --- t0 ----------------------------------------------------------------------------------

#: Every public entry that takes t0, called with it (the methods check at construction).
T0_ENTRIES = {
    "ClearHaze": lambda t0: dehaze.ClearHaze(t0=t0),
    "DarkChannelPrior": lambda t0: dehaze.DarkChannelPrior(t0=t0),
    "RobustDCP": lambda t0: dehaze.RobustDCP(t0=t0),
    "ColorAttenuationPrior": lambda t0: dehaze.ColorAttenuationPrior(t0=t0),
    "recover": lambda t0: dehaze.recover(np.full((2, 2, 3), 0.5), np.zeros((2, 2)), 0.5, t0=t0),
    "depth_map": lambda t0: dehaze.depth_map(np.zeros((2, 2)), t0=t0),
    "tolerance_transmission": lambda t0: dehaze.tolerance_transmission(
        np.zeros((2, 2)), np.full((2, 2, 3), 0.5), 0.5, 0.2, t0=t0
    ),
}


@pytest.mark.parametrize("t0", [1e-39, 1e-300, 5e-324, 1e-5, float(np.nextafter(MIN_T0, 0.0))])
@pytest.mark.parametrize("entry", sorted(T0_ENTRIES))
def test_t0_below_the_bound_is_refused(entry, t0):
    # these were accepted as in (0, 1): below float32's smallest normal they became 0
    # (0 / 0 = NaN images, inf depths), and down to 1e-5 the float32 rounding of I - A,
    # times 1 / t0, moved uint8 pixels at A by a level (178 -> 179) and more (255)
    with pytest.raises(ValueError, match=r"t0 must be in \[0\.001, 1\)"):
        T0_ENTRIES[entry](t0)


@pytest.mark.parametrize("entry", sorted(T0_ENTRIES))
def test_the_smallest_t0_is_accepted(entry):
    T0_ENTRIES[entry](MIN_T0)


def _t0_test_image(dtype: type, gray: bool) -> np.ndarray:
    """A flat area at its own airlight (t = 0 with ω = 1), black, white, saturated, noise."""
    image = np.random.default_rng(3).random((36, 40, 3))
    image[:12] = 0.7
    image[12:16] = 0.0
    image[16:20] = 1.0
    image[20:24] = [0.0, 0.0, 1.0]
    if gray:
        image = np.ascontiguousarray(image[..., 0])
    if np.dtype(dtype).kind == "u":
        return np.rint(image * np.iinfo(dtype).max).astype(dtype)
    return image.astype(dtype)


T0_METHODS = {
    "ClearHaze": dehaze.ClearHaze(t0=MIN_T0, omega=1.0),
    "ClearHaze-float64": dehaze.ClearHaze(t0=MIN_T0, omega=1.0, precision="float64"),
    "DarkChannelPrior": dehaze.DarkChannelPrior(t0=MIN_T0, omega=1.0, guided_radius=4),
    "RobustDCP": dehaze.RobustDCP(t0=MIN_T0, omega=1.0, guided_radius=4),
    "ColorAttenuationPrior": dehaze.ColorAttenuationPrior(t0=MIN_T0, guided_radius=4),
}


@pytest.mark.parametrize("gray", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("method", sorted(T0_METHODS))
def test_the_smallest_t0_gives_finite_outputs(method, dtype, gray):
    # at t0 = MIN_T0 the gains, the recovered image and the depth (≤ −ln t0 = 6.91) stay
    # finite (overflow warnings are errors here), and a flat area at A stays what it was
    image = _t0_test_image(dtype, gray)
    result = T0_METHODS[method](image)
    assert result.image.dtype == image.dtype
    for name in ("image", "transmission", "depth"):
        plane = getattr(result, name)
        assert np.all(np.isfinite(plane)), name
    assert np.all(result.depth <= -np.log(MIN_T0) * (1 + 1e-6))
    if not method.startswith("ColorAttenuation") and dtype == np.uint8:
        # the flat area is at A: the gain multiplies I − A ≈ 0 (its rounding, × 1000, is a
        # fiftieth of a level) and leaves it as it was
        np.testing.assert_array_equal(result.image[:12], image[:12])


@pytest.mark.parametrize("clip", [True, False])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_recover_and_depth_at_the_smallest_t0_are_finite(dtype, clip):
    image = _t0_test_image(dtype, gray=False)
    t = np.zeros(image.shape[:2], np.float32)
    for light in (1.0, 0.7, float(np.finfo(np.float32).tiny)):
        out = dehaze.recover(image, t, light, t0=MIN_T0, clip=clip)
        assert out.dtype == image.dtype
        assert np.all(np.isfinite(out.astype(np.float64)))
    depth = dehaze.depth_map(t, t0=MIN_T0)
    assert np.all(np.isfinite(depth)) and np.allclose(depth, -np.log(MIN_T0))


# --- guided filter eps ----------------------------------------------------------------


@pytest.mark.parametrize("eps", [0.0, 1e-13, 1e-18, 1e-300, -1.0, np.inf, np.nan])
def test_eps_below_the_documented_minimum_is_refused(eps, rng):
    guide = rng.random((20, 30, 3))
    with pytest.raises(ValueError, match=r"eps must be in \[1e-12, inf\)"):
        dehaze.guided_filter(guide, guide[..., 0], 3, eps)
    with pytest.raises(ValueError, match=r"eps must be in \[1e-12, inf\)"):
        guided_filter_plane(
            np.ascontiguousarray(guide), np.ascontiguousarray(guide[..., 0]), 3, eps, 1
        )


@pytest.mark.parametrize("eps", ["1e-3", True])
def test_eps_refuses_strings_and_bools(eps):
    with pytest.raises(TypeError, match="eps"):
        check_eps(eps)


def _guides(rng, shape):
    h, w = shape
    gray = rng.random((h, w, 1))
    return {
        "flat": np.full((h, w, 3), 0.37),
        "black": np.zeros((h, w, 3)),
        "white": np.ones((h, w, 3)),
        "gray-as-rgb": np.repeat(gray, 3, axis=2),  # Σ of rank 1 in every window
        "nearly-gray": np.clip(np.repeat(gray, 3, axis=2) + rng.random((h, w, 3)) * 1e-7, 0, 1),
        "half-flat": np.concatenate(
            [np.full((h, w // 2, 3), 0.8), rng.random((h, w - w // 2, 3))], 1
        ),
        "random": rng.random((h, w, 3)),
    }


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("subsample", [1, 3])
@pytest.mark.parametrize("eps", [MIN_EPS, 1e-9, 1e-3, 1e3])
def test_no_nan_for_any_accepted_eps(rng, dtype, subsample, eps):
    src = rng.random((70, 90))
    for name, guide in _guides(rng, src.shape).items():
        g = guide.astype(dtype)
        for out in (
            dehaze.guided_filter(g, src.astype(dtype), 6, eps, subsample=subsample),
            dehaze.guided_filter(g[..., 0], src.astype(dtype), 6, eps, subsample=subsample),
        ):
            assert np.all(np.isfinite(out)), name


def test_colour_solve_at_the_minimum_eps_matches_the_reference(rng):
    # the 3×3 solve is LDLᵀ: on a guide whose channels are equal (singular Σ) and at the
    # smallest eps it still agrees with the float64 np.linalg.solve reference and with the
    # gray guide (the cofactor inverse it replaced was off by 0.1 here)
    gray = rng.random((50, 60))
    guide = np.repeat(gray[..., np.newaxis], 3, axis=2)
    src = rng.random((50, 60))
    out = dehaze.guided_filter(guide, src, 5, MIN_EPS)
    np.testing.assert_allclose(out, guided_color_ref(guide, src, 5, MIN_EPS), atol=1e-9)
    np.testing.assert_allclose(out, guided_gray_ref(gray, src, 5, 3 * MIN_EPS), atol=1e-6)


@pytest.mark.parametrize("eps", [1e-100, 1e-300, 5e-324])
def test_colour_kernel_is_finite_even_below_the_minimum(rng, eps):
    # defence in depth for callers that skip check_eps: a flat window's system (det = ε³)
    # used to give NaN; the kernel falls back to the window mean instead
    from dehaze._kernels import guided as gk

    guide = np.full((40, 50, 3), 0.37)
    src = rng.random((40, 50))
    ab = np.empty((4, 40, 50))
    gk.coefficients_color(guide, src, 4, eps, ab, 0, 50)
    assert np.all(np.isfinite(ab))


def test_guided_src_near_the_float32_maximum_is_refused_not_inf(rng):
    # the fast filter's output overshot 3e38 in float32 and became inf
    guide = rng.random((40, 50, 3)).astype(np.float32)
    src = (rng.random((40, 50)) * 3e38).astype(np.float32)
    with pytest.raises(ValueError, match="src has values up to"):
        dehaze.guided_filter(guide, src, 5, 1e-3, subsample=2)
    # the largest accepted magnitude, and float64 for larger values, stay finite
    limit = float(np.finfo(np.float32).max) / 2**20
    for s in (1, 2):
        out = dehaze.guided_filter(
            guide, (src / 3e38 * limit).astype(np.float32), 5, MIN_EPS, subsample=s
        )
        assert np.all(np.isfinite(out))
        out = dehaze.guided_filter(
            guide.astype(np.float64), src.astype(np.float64), 5, 1e-3, subsample=s
        )
        assert np.all(np.isfinite(out))
