"""The package's shape: stages in their own modules, one registry, two-phase methods."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import numpy as np
import pytest

import dehaze
from dehaze import registry
from dehaze.cli import build_parser
from dehaze.result import LightScene, Method, Scene

PACKAGE = Path(dehaze.__file__).parent
#: Low-level modules whose private names the rest of the package may use.
ENGINE_ROOM = ("dehaze._kernels", "dehaze._validate", "dehaze._jit", "dehaze._parallel")


def _modules() -> list[str]:
    names = ["dehaze"]
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="dehaze."):
        names.append(info.name)
    return names


def _private_imports(path: Path, module: str) -> list[str]:
    """``from X import _name`` where X is another dehaze module outside the engine room."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:  # relative import: resolve against this module's package
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1])
            source = f"{base}.{node.module}" if node.module else base
        else:
            source = node.module or ""
        if not source.startswith("dehaze") or source == module:
            continue
        if source.startswith(ENGINE_ROOM):
            continue
        for alias in node.names:
            name = alias.name
            if not name.startswith("_") or (name.startswith("__") and name.endswith("__")):
                continue
            # a subpackage's private helper modules serve its own modules (models/_formats)
            if source == package and package != "dehaze" and module.startswith(package + "."):
                continue
            found.append(f"{module}: from {source} import {name}")
    return found


def test_every_module_imports() -> None:
    for name in _modules():
        importlib.import_module(name)


def test_no_private_name_crosses_a_module_boundary() -> None:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(relative.parts)
        if parts[-1] == "__init__":
            parts.pop()
        problems += _private_imports(path, ".".join(parts))
    assert problems == []


def test_the_check_finds_a_private_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from dehaze.dcp import _apply\nfrom dehaze._validate import _x\n"
        "from dehaze import __version__\nfrom dehaze.models import _formats\n"
    )
    assert _private_imports(bad, "dehaze.cli") == [
        "dehaze.cli: from dehaze.dcp import _apply",
        "dehaze.cli: from dehaze.models import _formats",
    ]
    # a module of the same subpackage may use its private helper modules
    assert _private_imports(bad, "dehaze.models.aodnet") == [
        "dehaze.models.aodnet: from dehaze.dcp import _apply"
    ]


def test_command_line_and_benchmark_share_one_registry() -> None:
    from dehaze.benchmark import cli as bench_cli

    assert bench_cli.METHODS is registry.METHODS
    assert {"identity", "dcp", "robust", "cap", "aodnet", "dehazenet"} <= set(registry.METHODS)
    help_text = build_parser().format_help()
    for name in registry.METHODS:
        assert name in help_text
    assert registry.DEFAULT_METHOD in registry.METHODS


def _methods() -> list[tuple[str, object]]:
    from dehaze.models import AODNet, AODNetWeights, DehazeNet, DehazeNetWeights

    rng = np.random.default_rng(3)
    aod = AODNetWeights(
        **{k: rng.normal(0, 0.3, s).astype(np.float32) for k, s in AODNetWeights.SHAPES.items()}
    )
    net = DehazeNetWeights(
        **{k: rng.normal(0, 0.1, s).astype(np.float32) for k, s in DehazeNetWeights.SHAPES.items()}
    )
    return [
        ("dcp", dehaze.DarkChannelPrior(patch_radius=3, guided_radius=6)),
        ("dcp_fixed", dehaze.DarkChannelPrior(atmospheric_light=0.8, guided_radius=5)),
        ("dcp_fast_color", dehaze.DarkChannelPrior(guided_radius=8, subsample=2, guide="color")),
        ("robust", dehaze.RobustDCP(patch_radius=3, guided_radius=6, sky_range=(0.0, 0.5))),
        ("robust_quadtree", dehaze.RobustDCP(light="quadtree", guided_radius=6, amount=0.7)),
        ("cap", dehaze.ColorAttenuationPrior(guided_radius=6, tolerance=0.2, amount=0.9)),
        (
            "clear",
            # windows small against the working size, so an image can be wider than 2 halos
            dehaze.ClearHaze(
                working_size=48,
                patch_radius=3,
                guided_radius=6,
                signal_radius=2,
                reach_radius=3,
                detail_sigma=0.5,
            ),
        ),
        (
            "clear_k2",
            dehaze.ClearHaze(
                working_size=32,
                patch_radius=2,
                guided_radius=3,
                signal_radius=1,
                reach_radius=2,
                detail_sigma=0.5,
            ),
        ),
        ("aodnet", AODNet(aod)),
        ("dehazenet", DehazeNet(net, guided_radius=6)),
        ("identity", registry.Identity()),
    ]


@pytest.mark.parametrize(
    ("name", "method"), _methods(), ids=lambda v: v if isinstance(v, str) else ""
)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_call_is_apply_of_estimate(name: str, method: object, dtype: type) -> None:
    rng = np.random.default_rng(7)
    image = rng.random((70, 90, 3)) * 0.6 + 0.3
    image = (image * 255).round().astype(dtype) if dtype == np.uint8 else image.astype(dtype)
    assert isinstance(method, Method)
    whole = method(image)
    scene = method.estimate(image)
    assert isinstance(scene, Scene)
    parts = method.apply(image, scene)
    for field in ("image", "transmission", "atmospheric_light", "dark_channel", "depth"):
        a, b = getattr(whole, field), getattr(parts, field)
        assert (a is None) == (b is None), field
        if a is not None:
            np.testing.assert_array_equal(a, b, err_msg=field)
    for only_image in (method.apply(image, scene, outputs=()), method(image, outputs=())):
        np.testing.assert_array_equal(only_image.image, whole.image)
        assert only_image.transmission is None and only_image.depth is None
        assert only_image.dark_channel is None
    with_depth = method(image, outputs=("depth",))
    assert (with_depth.depth is None) == (whole.depth is None)
    assert with_depth.transmission is None


@pytest.mark.parametrize(
    ("name", "method"), _methods(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_halo_bounds_how_far_apply_looks(name: str, method: object) -> None:
    # change the image only farther than the halo from a probe pixel: with the same scene,
    # the output at the probe must not move (the halo is an upper bound of the context)
    assert isinstance(method, Method)
    rng = np.random.default_rng(11)
    size = 2 * method.halo + 9
    while True:  # a scale-free method's halo grows with the image: find a size that holds it
        image = (rng.random((size, size, 3)) * 0.6 + 0.3).astype(np.float64)
        scene = method.estimate(image)
        halo = method.halo_for(scene)
        if size >= 2 * halo + 9:
            break
        size = 2 * halo + 9
        assert size < 1000, "the halo grows as fast as the image: windows too large"
    probe = (size // 2, size // 2)
    changed = image.copy()
    far = np.ones((size, size), dtype=bool)
    far[probe[0] - halo : probe[0] + halo + 1, probe[1] - halo : probe[1] + halo + 1] = False
    changed[far] = rng.random((int(far.sum()), 3)) * 0.6 + 0.3
    before = method.apply(image, scene).image[probe]
    after = method.apply(changed, scene).image[probe]
    np.testing.assert_allclose(after, before, rtol=0, atol=1e-9)
    # and the halo is not vacuous for methods that look around: a change just inside moves it
    if halo > 0:
        near = image.copy()
        near[probe[0] - 1 : probe[0] + 2, probe[1] - 1 : probe[1] + 2] = 0.99
        assert not np.allclose(method.apply(near, scene).image[probe], before)


def test_scene_blend_is_the_ema_of_every_numeric_field() -> None:
    old = dehaze.RobustScene(np.array([0.5, 0.6, 0.7]), 0.2)
    new = dehaze.RobustScene(np.array([0.9, 0.6, 0.3]), 0.6)
    mixed = new.blend(old, 0.25)
    np.testing.assert_allclose(mixed.atmospheric_light, [0.6, 0.6, 0.6])
    assert mixed.tolerance == pytest.approx(0.3)
    assert new.blend(None, 0.25) is new
    off = dehaze.RobustScene(np.array([0.9, 0.6, 0.3]), None)
    assert off.blend(dehaze.RobustScene(np.array([0.5, 0.6, 0.7]), None), 0.5).tolerance is None
    with pytest.raises(TypeError, match="cannot blend"):
        new.blend(LightScene(np.array([0.5, 0.6, 0.7])), 0.5)  # type: ignore[arg-type]


def test_apply_checks_its_scene_and_outputs() -> None:
    image = np.full((20, 20, 3), 0.5)
    dcp = dehaze.DarkChannelPrior(guided_radius=4)
    with pytest.raises(TypeError, match="LightScene"):
        dcp.apply(image, Scene())
    with pytest.raises(ValueError, match="atmospheric_light"):
        dcp.apply(image, LightScene(np.array([0.5, 0.5])))
    with pytest.raises(ValueError, match="outputs"):
        dcp.apply(image, dcp.estimate(image), outputs=("image", "colour"))
    with pytest.raises(TypeError, match="outputs"):
        dcp.apply(image, dcp.estimate(image), outputs="depth")
    robust = dehaze.RobustDCP(guided_radius=4)
    with pytest.raises(TypeError, match="RobustScene"):
        robust.apply(image, dcp.estimate(image))
    with pytest.raises(ValueError, match="tolerance"):
        robust.apply(image, dehaze.RobustScene(np.array([0.5, 0.5, 0.5]), None))


@pytest.mark.parametrize("t0", [0.1, 0.3])
def test_returned_transmission_lies_in_t0_to_one(t0: float) -> None:
    # a bright patch above A drives the raw t below 0 and the refinement overshoots 1
    rng = np.random.default_rng(5)
    image = rng.random((64, 64, 3)) * 0.5
    image[20:40, 20:40] = 1.0
    for method in (
        dehaze.DarkChannelPrior(t0=t0, guided_radius=4, eps=1e-4, atmospheric_light=0.6),
        dehaze.RobustDCP(t0=t0, guided_radius=4, eps=1e-4, tolerance=None, amount=0.5),
        dehaze.ColorAttenuationPrior(t0=t0, guided_radius=4),
    ):
        t = method(image).transmission
        assert t is not None and t.min() >= np.float32(t0) - 1e-7 and t.max() <= 1.0
