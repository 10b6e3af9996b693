"""Tiled processing equals the whole-image result: bit for bit for integer images."""

from __future__ import annotations

import multiprocessing
import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dehaze
from dehaze import ClearHaze, ColorAttenuationPrior, DarkChannelPrior, RobustDCP, tiles
from dehaze.result import ALL_OUTPUTS

FIELDS = ("image", "transmission", "dark_channel", "depth", "atmospheric_light")


def hazy(rng: np.random.Generator, h: int, w: int, dtype: type, gray: bool = False) -> np.ndarray:
    y = np.linspace(0, 1, h)[:, None, None]
    x = np.linspace(0, 1, w)[None, :, None]
    clear = 0.45 + 0.3 * np.sin(7 * x + 5 * y + np.array([0, 1, 2])) + 0.2 * rng.random((h, w, 3))
    t = np.exp(-1.5 * (1 - y))
    img = np.clip(np.clip(clear, 0, 1) * t + 0.88 * (1 - t), 0, 1)
    img[: max(1, h // 5)] = 0.9 + 0.02 * rng.random((max(1, h // 5), w, 3))  # a flat sky
    if gray:
        img = img @ np.array([0.299, 0.587, 0.114])
    if np.issubdtype(dtype, np.integer):
        return np.rint(img * np.iinfo(dtype).max).astype(dtype)
    return img.astype(dtype)


def assert_same(whole, tiled, exact: bool) -> None:
    for field in FIELDS:
        want, got = getattr(whole, field), getattr(tiled, field)
        if want is None:
            assert got is None, field
            continue
        assert got.dtype == want.dtype and got.shape == want.shape, field
        if exact:
            np.testing.assert_array_equal(got, want, err_msg=field)
        else:
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, err_msg=field)


def dcp_methods(draw) -> object:
    return DarkChannelPrior(
        patch_radius=draw(st.integers(0, 6)),
        guided_radius=draw(st.integers(0, 14)),
        eps=draw(st.sampled_from([1e-3, 0.03])),
        guide=draw(st.sampled_from(["gray", "color"])),
        subsample=draw(st.integers(1, 3)),
        top_fraction=draw(st.sampled_from([0.001, 0.05, 1.0])),
    )


@st.composite
def methods(draw) -> object:
    kind = draw(st.sampled_from(["dcp", "robust", "cap", "clear"]))
    if kind == "dcp":
        return dcp_methods(draw)
    if kind == "robust":
        return RobustDCP(
            patch_radius=draw(st.integers(0, 5)),
            guided_radius=draw(st.integers(1, 12)),
            subsample=draw(st.integers(1, 2)),
            guard_radius=draw(st.integers(0, 3)),
            tolerance=draw(st.sampled_from([None, 0.2])),
        )
    if kind == "cap":
        return ColorAttenuationPrior(
            patch_radius=draw(st.integers(0, 5)), guided_radius=draw(st.integers(1, 10))
        )
    return ClearHaze(
        working_size=draw(st.integers(16, 60)),
        radii_size=draw(st.sampled_from([None, 16, 45, 120])),  # windows scaled 0.1-4x
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=methods(),
    h=st.integers(1, 70),
    w=st.integers(1, 90),
    tile=st.integers(1, 64),
    dtype=st.sampled_from([np.uint8, np.uint16, np.float32]),
    gray=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_tiled_equals_whole(method, h, w, tile, dtype, gray, seed):
    image = hazy(np.random.default_rng(seed), h, w, dtype, gray)
    whole = method(image)
    scene = tiles.estimate_tiled(method, image, tile=tile)
    expected_scene = method.estimate(image)
    for name in expected_scene.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(scene, name), getattr(expected_scene, name))
    tiled = tiles.dehaze_tiled(method, image, tile=tile)
    # integer images bit for bit; float32 too (the sums are exact), promised within 1e-6
    assert_same(whole, tiled, exact=dtype != np.float32)
    if dtype == np.float32:
        assert_same(whole, tiled, exact=False)


def test_radii_larger_than_tiles_and_images_smaller_than_a_tile(rng):
    image = hazy(rng, 45, 61, np.uint8)
    method = DarkChannelPrior(patch_radius=9, guided_radius=40, subsample=2)
    assert_same(method(image), tiles.dehaze_tiled(method, image, tile=8), exact=True)
    assert_same(method(image), tiles.dehaze_tiled(method, image, tile=4096), exact=True)


def test_float64_within_1e_6(rng):
    image = hazy(rng, 70, 83, np.float64)
    for method in (DarkChannelPrior(guided_radius=12), ClearHaze(working_size=20)):
        assert_same(method(image), tiles.dehaze_tiled(method, image, tile=24), exact=False)


@pytest.mark.parametrize("k", [2, 3])
def test_clear_haze_with_cut_blocks(rng, k):
    # sides that are not multiples of k: the last blocks are cut by the image's edge
    image = hazy(rng, 20 * k + 1, 27 * k + k - 1, np.uint8)
    method = ClearHaze(working_size=20)
    assert method.estimate(image).factor == k
    assert_same(method(image), tiles.dehaze_tiled(method, image, tile=7), exact=True)


def test_a_large_image_with_the_default_tile():
    rng = np.random.default_rng(3)
    image = hazy(rng, 1500, 2300, np.uint8)
    for method in (ClearHaze(), DarkChannelPrior(), RobustDCP()):
        assert_same(method(image), tiles.dehaze_tiled(method, image), exact=True)


def test_iter_tiles_holds_one_tile_and_reads_each_region_once_per_pass(rng):
    image = hazy(rng, 90, 130, np.uint8)
    reads: list[tuple[slice, slice]] = []

    class Counting:
        shape, dtype = image.shape, image.dtype

        def __getitem__(self, key):
            reads.append(key)
            return image[key]

    method = DarkChannelPrior(patch_radius=3, guided_radius=6)
    plan = tiles.plan_tiles(image.shape, 40, method.halo)
    got = list(tiles.iter_tiles(method, Counting(), tile=40, outputs=ALL_OUTPUTS))
    assert [t for t, _ in got] == plan
    largest = max(
        (t.read[0].stop - t.read[0].start) * (t.read[1].stop - t.read[1].start) for t in plan
    )
    read_sizes = [(r[0].stop - r[0].start) * (r[1].stop - r[1].start) for r in reads]
    assert max(read_sizes) <= largest < image.shape[0] * image.shape[1]
    whole = method(image)
    for t, part in got:
        np.testing.assert_array_equal(part.image, whole.image[t.out])


def test_plan_tiles_covers_the_image_once():
    plan = tiles.plan_tiles((37, 50), 16, 5, align=3)
    covered = np.zeros((37, 50), int)
    for t in plan:
        covered[t.out] += 1
        assert t.out[0].start % 3 == 0 and t.read[0].start % 3 == 0
        assert t.read[1].start % 3 == 0
    assert (covered == 1).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tile": 0}, "tile"),
        ({"halo": -1}, "halo"),
        ({"align": 0}, "align"),
    ],
)
def test_plan_tiles_rejects_bad_parameters(kwargs, message):
    params = {"tile": 8, "halo": 2, "align": 1} | kwargs
    with pytest.raises(ValueError, match=message):
        tiles.plan_tiles((10, 10), **params)


def test_unsupported_estimates_are_refused_clearly(rng):
    image = hazy(rng, 20, 20, np.uint8)
    with pytest.raises(ValueError, match="light='he'"):
        tiles.estimate_tiled(RobustDCP(light="quadtree"), image)
    with pytest.raises(TypeError, match="no tiled estimate for object"):
        tiles.estimate_tiled(object(), image)
    with pytest.raises(TypeError, match="dtype"):
        tiles.estimate_tiled(DarkChannelPrior(), image.astype(np.int32))
    with pytest.raises(TypeError, match="got list; pass np.asarray"):  # was AttributeError
        tiles.dehaze_tiled(DarkChannelPrior(), image.tolist())
    # a given scene makes any method with a halo tileable
    method = RobustDCP(light="quadtree")
    scene = method.estimate(image)
    assert_same(method(image), tiles.dehaze_tiled(method, image, scene=scene, tile=7), exact=True)


def test_apply_tile_checks_the_block(rng):
    image = hazy(rng, 100, 100, np.uint8)
    prepared = tiles.prepare(DarkChannelPrior(patch_radius=2, guided_radius=4), image)
    tile = prepared.plan(16)[0]
    with pytest.raises(ValueError, match="block has shape"):
        tiles.apply_tile(prepared, image, tile)


@pytest.mark.parametrize("tile", [5, 23, 64])
def test_networks_tile_exactly(rng, tile):
    # AOD-Net's receptive field is finite (halo 7) and its scene empty; DehazeNet's scene
    # (A from the network's t over the whole image) is given, its apply is tiled
    from test_models import random_aodnet_weights, random_dehazenet_weights

    from dehaze.models import AODNet, DehazeNet

    image = hazy(rng, 47, 66, np.uint8)
    aod = AODNet(random_aodnet_weights(rng))
    assert_same(aod(image), tiles.dehaze_tiled(aod, image, tile=tile), exact=True)
    net = DehazeNet(random_dehazenet_weights(rng), guided_radius=6)
    scene = net.estimate(image)
    with pytest.raises(TypeError, match="no tiled estimate for DehazeNet"):
        tiles.estimate_tiled(net, image)
    assert_same(net(image), tiles.dehaze_tiled(net, image, scene=scene, tile=tile), exact=True)


def test_strips_span_the_width_and_cover_the_image_once():
    plan = tiles.plan_tiles((37, 50), 16, 0, align=3, strips=True)
    covered = np.zeros((37, 50), int)
    for t in plan:
        covered[t.out] += 1
        assert t.out[1] == slice(0, 50) and t.out[0].start % 3 == 0
    assert (covered == 1).all()
    # about tile² pixels a strip: 16² // 50 = 5 rows, rounded up to the alignment: 6
    assert plan[0].out[0] == slice(0, 6)


def test_a_tile_written_in_place(rng):
    # ClearHaze's strips are written straight into the output; out is checked
    image = hazy(rng, 60, 80, np.uint8)
    method = ClearHaze(working_size=20)
    prepared = tiles.prepare(method, image)
    tile = prepared.plan(16)[1]
    target = np.zeros((60, 80, 3), np.uint8)
    part = tiles.apply_tile(prepared, image[tile.read], tile, out=target[tile.out])
    assert part.image.base is not None and np.shares_memory(part.image, target)
    np.testing.assert_array_equal(target[tile.out], method(image).image[tile.out])
    with pytest.raises(ValueError, match="C-contiguous uint8"):
        tiles.apply_tile(prepared, image[tile.read], tile, out=target[tile.out][:, :-1])
    dcp = tiles.prepare(DarkChannelPrior(guided_radius=3), image)
    t = dcp.plan(16)[0]
    with pytest.raises(ValueError, match="without a halo"):
        tiles.apply_tile(dcp, image[t.read], t, out=np.zeros((16, 16, 3), np.uint8))


@pytest.mark.parametrize("cache_bytes", [0, 3000, 1 << 30])
def test_he_passes_give_the_same_scene_whatever_maps_they_keep(rng, monkeypatch, cache_bytes):
    # no map kept, the first tiles' maps only (a map is at most 40×40 float32 = 6400
    # bytes, 1600 on DCP's coarse grid), every map
    monkeypatch.setattr(tiles, "MAP_CACHE_BYTES", cache_bytes)
    image = hazy(rng, 97, 131, np.uint8)
    for method in (DarkChannelPrior(patch_radius=3, subsample=2), RobustDCP(guard_radius=2)):
        scene, expected = tiles.estimate_tiled(method, image, tile=40), method.estimate(image)
        for name in expected.__dataclass_fields__:
            np.testing.assert_array_equal(getattr(scene, name), getattr(expected, name))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keys_order_floats_and_map_back(rng, dtype):
    special = [0.0, -0.0, np.inf, -np.inf, 1e-45, -1e-45, 5e-324, -5e-324]
    values = np.concatenate([rng.standard_normal(2000), special]).astype(dtype)
    keys = tiles._keys(values)
    assert keys.dtype == (np.uint32 if dtype == np.float32 else np.uint64)
    ordered = values[np.argsort(keys, kind="stable")]
    assert np.all(ordered[:-1] <= ordered[1:])
    negative_zero = np.flatnonzero((values == 0) & np.signbit(values))[0]
    positive_zero = np.flatnonzero((values == 0) & ~np.signbit(values))[0]
    assert keys[negative_zero] + 1 == keys[positive_zero]
    for index in range(0, values.size, 37):
        back = tiles._value_of_key(int(keys[index]), np.dtype(dtype))
        assert back == values[index] and np.signbit(back) == np.signbit(values[index])


def _tiled_and_whole(method, image):  # type: ignore[no-untyped-def]
    return tiles.dehaze_tiled(method, image, tile=48).image, method(image).image


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")
def test_a_child_forked_after_the_parent_ran_tiles_runs_them_too(rng):
    # the parent's tile and band pools exist; a forked child has none of their threads,
    # and must not wait forever on them
    image = hazy(rng, 150, 170, np.uint8)
    method = ClearHaze(working_size=30)
    with dehaze.num_threads(2):
        expected = _tiled_and_whole(method, image)
        context = multiprocessing.get_context("fork")
        with warnings.catch_warnings():  # Python ≥ 3.12 warns on forking with threads
            warnings.simplefilter("ignore", DeprecationWarning)
            with context.Pool(1) as pool:
                got = pool.apply_async(_tiled_and_whole, (method, image)).get(timeout=120)
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_array_equal(have, want)


def test_identity_tiles_exactly(rng):
    # the tables' floor: its scene reads no pixel, so it tiles (the command line's
    # --method identity --tile printed library advice instead)
    from dehaze.registry import Identity

    image = hazy(rng, 30, 41, np.uint8)
    method = Identity()
    assert type(tiles.estimate_tiled(method, image)) is type(method.estimate(image))
    assert_same(method(image), tiles.dehaze_tiled(method, image, tile=16), exact=True)
