"""Tests for the benchmark runner (dehaze.benchmark)."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from dehaze import DarkChannelPrior
from dehaze.benchmark import (
    Record,
    find_sets,
    main,
    markdown_table,
    run_benchmark,
    summarize,
)
from dehaze.datasets import sots_pairs
from dehaze.io import imwrite
from dehaze.metrics import evaluate
from dehaze.registry import (
    METHODS,
    Identity,
    MethodContext,
    build_method,
    dataclass_factory,
    describe_method,
    parse_method_spec,
    register_method,
)
from dehaze.result import Dehazer, DehazeResult

CONTEXT = MethodContext(data_root=Path("no-such-data"))


def _make_sots(root: Path, n: int = 2) -> Path:
    rng = np.random.default_rng(5)
    for i in range(n):
        clear = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        hazy = (clear * 0.5 + 100).astype(np.uint8)
        imwrite(root / "gt" / f"{10 + i}.png", clear)
        imwrite(root / "hazy" / f"{10 + i}_1.png", hazy)
    return root


# --- method specs and registry --------------------------------------------------------


def test_parse_method_spec() -> None:
    spec = parse_method_spec(" dcp:omega=0.9, guide=color ")
    assert (spec.label, spec.name, spec.options) == (
        "dcp:omega=0.9, guide=color",
        "dcp",
        {"omega": "0.9", "guide": "color"},
    )
    assert parse_method_spec("identity").options == {}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope", "unknown method 'nope'.*accepted methods are"),
        ("dcp:omega", "key=value"),
        ("dcp:omega=0.9,omega=0.8", "twice"),
        ("", "non-empty"),
    ],
)
def test_bad_method_specs(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_method_spec(spec)


def test_dcp_options_are_converted_and_validated() -> None:
    method = build_method(
        "dcp:omega=0.8,patch_radius=3,guide=color,eps=1e-3,atmospheric_light=0.9/0.8/0.7",
        CONTEXT,
    )
    assert method == DarkChannelPrior(
        omega=0.8, patch_radius=3, guide="color", eps=1e-3, atmospheric_light=(0.9, 0.8, 0.7)
    )
    with pytest.raises(ValueError, match="no option 'radius'.*patch_radius"):
        build_method("dcp:radius=3", CONTEXT)
    with pytest.raises(ValueError, match="patch_radius must be an integer"):
        build_method("dcp:patch_radius=1.5", CONTEXT)
    with pytest.raises(ValueError, match="omega"):
        build_method("dcp:omega=2", CONTEXT)  # DarkChannelPrior's own check
    with pytest.raises(ValueError, match="identity takes no options"):
        build_method("identity:x=1", CONTEXT)


def test_network_without_weights_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="aodnet: weights file .* not found"):
        build_method("aodnet", MethodContext(data_root=tmp_path))
    with pytest.raises(ValueError, match="accepted options are weights"):
        build_method("dehazenet:radius=3", MethodContext(data_root=tmp_path))


def test_register_method_is_one_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dehaze.registry.METHODS", dict(METHODS))

    def factory(options: Mapping[str, str], context: MethodContext) -> Dehazer:
        return Identity()

    register_method("flat", factory)
    assert isinstance(build_method("flat", CONTEXT), Identity)
    with pytest.raises(ValueError, match="already registered"):
        register_method("flat", factory)
    with pytest.raises(ValueError, match="letters"):
        register_method("bad name", factory)
    # a dataclass method named lazily by "module:Class"
    register_method("dcp2", dataclass_factory("dehaze.dcp:DarkChannelPrior"))
    assert build_method("dcp2:t0=0.2", CONTEXT) == DarkChannelPrior(t0=0.2)


def test_describe_method() -> None:
    assert describe_method(Identity()) == "Identity()"
    text = describe_method(DarkChannelPrior(omega=0.9))
    assert text.startswith("DarkChannelPrior(omega=0.9, ") and "guide='gray'" in text


# --- running and summarising ----------------------------------------------------------


class _FakeClock:
    """``time.perf_counter`` stand-in that only moves when a method says it worked."""

    def __init__(self) -> None:
        self.now = 1024.0

    def __call__(self) -> float:
        return self.now


class _Shift:
    """A method whose scores are known: adds a constant (uint8 in, uint8 out).

    Each call advances the fake clock by exactly ``seconds``, so its timing is known too.
    """

    def __init__(self, clock: _FakeClock, seconds: float) -> None:
        self.calls = 0
        self.clock = clock
        self.seconds = seconds

    @staticmethod
    def shifted(image: np.ndarray) -> np.ndarray:
        return np.clip(image.astype(np.int16) + 10, 0, 255).astype(np.uint8)

    def __call__(self, image: np.ndarray) -> DehazeResult:
        self.calls += 1
        self.clock.now += self.seconds
        return DehazeResult(image=self.shifted(image))


def test_run_benchmark_scores_every_pair_and_warms_up_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    pairs = sots_pairs(_make_sots(tmp_path / "set", n=3))
    clock = _FakeClock()
    monkeypatch.setattr(time, "perf_counter", clock)
    shift = _Shift(clock, 0.015625)  # 15.625 ms a call (1/64 s: exact in binary)
    records = run_benchmark([pairs], [("identity", Identity()), ("shift", shift)], progress=False)
    assert [(r.method, r.image) for r in records] == [
        (m, name) for name in ("10_1", "11_1", "12_1") for m in ("identity", "shift")
    ]
    assert shift.calls == 3 + 1  # one untimed warm-up call
    from dehaze.datasets import load_pair

    for identity, shifted, pair in zip(records[::2], records[1::2], pairs, strict=True):
        hazy, clear = load_pair(pair)
        for record, output in ((identity, hazy), (shifted, _Shift.shifted(hazy))):
            expected = evaluate(clear, output)
            assert (record.psnr, record.ssim, record.ciede2000) == (
                expected.psnr,
                expected.ssim,
                expected.ciede2000,
            )
            assert record.input_psnr == evaluate(clear, hazy).psnr
            assert (record.width, record.height) == (32, 24)
        # the shift changes the scores (else the comparison above could not tell them apart)
        assert shifted.psnr != identity.psnr
        # the timed span is the method call alone: the identity does not move the clock
        assert (identity.ms, shifted.ms) == (0.0, 15.625)
    limited = run_benchmark([pairs], [("identity", Identity())], limit=2, progress=False)
    assert len(limited) == 2


def test_run_benchmark_rejects_wrong_output_shape(tmp_path: Path) -> None:
    pairs = sots_pairs(_make_sots(tmp_path / "set", n=1))

    def crop(image: np.ndarray) -> DehazeResult:
        return DehazeResult(image=image[1:])

    with pytest.raises(ValueError, match="method crop returned shape"):
        run_benchmark([pairs], [("crop", crop)], progress=False)


def _record(
    method: str, psnr: float, ms: float, width: int = 1000, input_psnr: float = 12.0
) -> Record:
    return Record("indoor", method, "x", width, 1000, ms, psnr, 0.5, 3.0, "h", "c", input_psnr)


def test_summarize_means_and_medians() -> None:
    rows = summarize(
        [
            _record("a", 10.0, 5.0, input_psnr=10.5),
            _record("a", 20.0, 7.0, width=2000),
            _record("a", 30.0, 100.0),
            _record("b", math.inf, 1.0),
        ]
    )
    a, b = rows
    assert (a.method, a.n, a.psnr, a.median_ms) == ("a", 3, 20.0, 7.0)
    assert a.ms_per_megapixel == 5.0  # median of 5/1, 7/2, 100/1
    assert math.isinf(b.psnr)
    table = markdown_table(rows)
    assert a.worst_gain == -0.5  # the first image lost 0.5 dB against its hazy input
    assert "| a | indoor | 3 | 20.00 | 0.5000 | 3.00 | -0.50 | 7.0 | 5.0 |" in table
    assert "| b | indoor | 1 | inf |" in table


# --- sets -----------------------------------------------------------------------------


def test_find_sets_layouts(tmp_path: Path) -> None:
    _make_sots(tmp_path / "root" / "sots" / "indoor")
    _make_sots(tmp_path / "root" / "sots" / "outdoor")
    assert [s.split for s in find_sets(tmp_path / "root")] == ["indoor", "outdoor"]
    assert [s.split for s in find_sets(tmp_path / "root", splits=["outdoor"])] == ["outdoor"]
    with pytest.raises(ValueError, match="split 'ohaze' not found"):
        find_sets(tmp_path / "root", splits=["ohaze"])
    single = find_sets(tmp_path / "root" / "sots" / "indoor")
    assert [(s.split, len(s)) for s in single] == [("indoor", 2)]
    sots_root = find_sets(tmp_path / "root" / "sots")  # indoor/ and outdoor/ directly
    assert [s.split for s in sots_root] == ["indoor", "outdoor"]
    with pytest.raises(FileNotFoundError, match="no evaluation sets"):
        find_sets(tmp_path)


# --- command line ---------------------------------------------------------------------


def test_main_writes_outputs_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    data = _make_sots(tmp_path / "indoor", n=2)
    out = tmp_path / "results"
    argv = ["--data", str(data), "--output", str(out), "--no-progress"]
    argv += ["--methods", "identity", "dcp:guided_radius=4"]
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "per_image.csv",
        "psnr_vs_time.png",
        "summary.md",
    ]
    with open(out / "per_image.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["method"], r["image"]) for r in rows] == [
        ("identity", "10_1"),
        ("dcp:guided_radius=4", "10_1"),
        ("identity", "11_1"),
        ("dcp:guided_radius=4", "11_1"),
    ]
    summary = (out / "summary.md").read_text()
    assert "| dcp:guided_radius=4 | indoor | 2 |" in summary
    assert "guided_radius=4" in summary and "Command: `dehaze bench --data" in summary
    assert (out / "psnr_vs_time.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    before = (out / "summary.md").stat().st_mtime_ns
    assert main(argv) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert (out / "summary.md").stat().st_mtime_ns == before
    assert main([*argv, "--overwrite", "--limit", "1"]) == 0
    assert "| identity | indoor | 1 |" in (out / "summary.md").read_text()


def test_main_reports_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _make_sots(tmp_path / "indoor", n=1)
    base = ["--data", str(data), "--output", str(tmp_path / "o"), "--no-plot", "--no-progress"]
    # usage errors exit 2, like the main command; a run that cannot be done exits 1
    assert main([*base, "--methods", "dcp:omega=7"]) == 2
    assert "omega" in capsys.readouterr().err
    assert main([*base, "--methods", "robust_dcp"]) == 2
    assert "unknown method 'robust_dcp'" in capsys.readouterr().err
    assert main([*base, "--weights", "resnet=x.pth"]) == 2
    assert "unknown network 'resnet'" in capsys.readouterr().err
    assert main(["--data", str(tmp_path / "none"), "--no-plot"]) == 1
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main([*base, "--limit", "0"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:  # ran every set, silently
        main([*base, "--split", " , "])
    assert exit_info.value.code == 2
    assert "--split needs at least one set name" in capsys.readouterr().err
    root = tmp_path / "root"  # an unknown set's message lists the photos folder too
    _make_sots(root / "sots" / "indoor", n=1)
    (root / "real").mkdir()
    bad = ["--data", str(root), "--output", str(tmp_path / "o2"), "--no-plot", "--no-progress"]
    assert main([*bad, "--split", "bogus"]) == 1
    assert "available: indoor, real" in capsys.readouterr().err
    (data / "hazy" / "11_1.png").write_bytes(b"broken")
    (data / "gt" / "11.png").write_bytes(b"broken")
    assert main([*base, "--methods", "identity"]) == 1
    assert "11_1.png" in capsys.readouterr().err
    assert main([*base, "--methods", "identity", "--no-strict"]) == 0
    captured = capsys.readouterr()
    assert "skipped" in captured.err and "11_1.png" in captured.err
    assert "| identity | indoor | 1 |" in captured.out


def test_default_methods_skip_missing_networks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEHAZE_DATA", str(tmp_path / "no-weights-here"))
    data = _make_sots(tmp_path / "indoor", n=1)
    argv = ["--data", str(data), "--output", str(tmp_path / "o"), "--no-plot", "--no-progress"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "not running aodnet" in captured.err and "not running dehazenet" in captured.err
    assert "| identity | indoor | 1 |" in captured.out and "| dcp | indoor | 1 |" in captured.out


@pytest.mark.data
def test_runner_end_to_end_on_three_shared_pairs(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results"
    argv = ["--data", str(data_dir), "--split", "indoor", "--limit", "3", "--no-progress"]
    argv += ["--output", str(out), "--no-plot", "--methods", "identity", "dcp"]
    assert main(argv) == 0
    with open(out / "per_image.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6
    from dehaze.datasets import load_pair

    pairs = sots_pairs(data_dir / "sots" / "indoor").pairs[:3]
    for pair, row in zip(pairs, rows[::2], strict=True):
        hazy, clear = load_pair(pair)
        assert row["image"] == pair.name and row["method"] == "identity"
        assert float(row["psnr"]) == pytest.approx(evaluate(clear, hazy).psnr, rel=1e-12)
    identity = [float(r["psnr"]) for r in rows if r["method"] == "identity"]
    dcp = [float(r["psnr"]) for r in rows if r["method"] == "dcp"]
    assert all(6.0 < p < 18.0 for p in identity)  # SOTS-indoor hazy inputs: 6.6–17.5 dB
    assert np.mean(dcp) > np.mean(identity) + 3.0  # DCP removes haze on these pairs
    assert "| dcp | indoor | 3 |" in (out / "summary.md").read_text()


@pytest.mark.data
def test_network_methods_are_built_from_the_shared_weights(data_dir: Path) -> None:
    pytest.importorskip("dehaze.models")  # written by another issue; optional here
    context = MethodContext(data_root=data_dir)
    image = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    for name in ("aodnet", "dehazenet"):
        method = build_method(name, context)
        assert method(image).image.shape == image.shape
    weights = data_dir / "weights" / "aodnet_caffe_Boyiliee_AOD_Net.caffemodel"
    assert build_method(f"aodnet:weights={weights}", context)(image).image.dtype == np.uint8
