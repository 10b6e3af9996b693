"""Coarse-to-fine parameter sweep of the dark-channel prior on the shared SOTS pairs.

Searches omega, patch_radius, guided_radius, eps, guide, t0 and top_fraction of
``dehaze.DarkChannelPrior`` for the best mean PSNR on the SOTS-indoor pairs, with the
pinned protocol of ``dehaze.metrics`` (the output is scored in uint8, as a saved PNG):

1. coarse: coordinate descent from the current defaults over a grid of each parameter
   (one parameter at a time, the others fixed at the best so far), repeated until a full
   round changes nothing;
2. fine: the same descent over finer steps around the coarse optimum;
3. SSIM (and CIEDE2000) for the defaults and the top configurations; the same
   configurations on the SOTS-outdoor pairs.

With ``--holdout`` the search runs on the scenes of the first half of the IDs only and the
result is scored on the other half (an overfitting check: 60 pairs from 30 scenes).

Usage::

    python bench/sweep_dcp.py                     # prints markdown
    python bench/sweep_dcp.py --output sweep.md --csv sweep.csv
    python bench/sweep_dcp.py --holdout

Reads ``$DEHAZE_DATA`` (default ../shared/data).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dehaze import DarkChannelPrior
from dehaze._data import data_root
from dehaze.datasets import ImagePair, iter_loaded, sots_pairs
from dehaze.metrics import Scorer, psnr

COARSE: dict[str, list[Any]] = {
    "omega": [0.7, 0.8, 0.85, 0.9, 0.95, 1.0],
    "patch_radius": [1, 2, 3, 5, 7, 10, 15],
    "guided_radius": [8, 15, 30, 45, 60, 90],
    "eps": [1e-5, 1e-4, 1e-3, 1e-2, 1e-1],
    "guide": ["gray", "color"],
    "t0": [0.05, 0.1, 0.15, 0.2, 0.3, 0.4],
    "top_fraction": [0.0005, 0.001, 0.005, 0.02],
}


def fine_grid(best: dict[str, Any]) -> dict[str, list[Any]]:
    """Finer values around a configuration."""

    def around(value: float, step: float, lo: float, hi: float) -> list[float]:
        values = {round(min(hi, max(lo, value + k * step)), 6) for k in range(-2, 3)}
        return sorted(values)

    radius = best["patch_radius"]
    g_radius = best["guided_radius"]
    return {
        "omega": around(best["omega"], 0.025, 0.5, 1.0),
        "t0": around(best["t0"], 0.025, 0.025, 0.6),
        "patch_radius": sorted({max(0, radius + k) for k in (-2, -1, 0, 1, 2)}),
        "guided_radius": sorted({max(2, round(g_radius * f)) for f in (0.7, 0.85, 1, 1.2, 1.4)}),
        "eps": sorted({float(f"{best['eps'] * f:.2g}") for f in (0.3, 0.5, 1.0, 2.0, 3.0)}),
        "top_fraction": sorted({float(f"{best['top_fraction'] * f:.2g}") for f in (0.5, 1.0, 2.0)}),
        "guide": ["gray", "color"],
    }


Pairs = list[tuple[ImagePair, np.ndarray, np.ndarray]]


def load(folder: Path) -> Pairs:
    return list(iter_loaded(sots_pairs(folder)))


class Evaluator:
    """Mean PSNR per configuration, cached."""

    def __init__(self, pairs: Pairs) -> None:
        self.pairs = pairs
        self.cache: dict[tuple[tuple[str, Any], ...], float] = {}
        self.seconds = 0.0

    def __call__(self, config: dict[str, Any]) -> float:
        key = tuple(sorted(config.items()))
        if key not in self.cache:
            start = time.perf_counter()
            method = DarkChannelPrior(**config)
            values = [psnr(clear, method(hazy).image) for _, hazy, clear in self.pairs]
            self.cache[key] = float(np.mean(values))
            self.seconds += time.perf_counter() - start
        return self.cache[key]


def descend(
    evaluate: Evaluator, start: dict[str, Any], grid: dict[str, list[Any]], log: list[str]
) -> dict[str, Any]:
    """Coordinate descent: best value of each parameter in turn until nothing changes."""
    best = dict(start)
    best_score = evaluate(best)
    for round_index in range(1, 6):
        changed = False
        for name, values in grid.items():
            for value in values:
                trial = {**best, name: value}
                score = evaluate(trial)
                if score > best_score + 1e-9:
                    best, best_score, changed = trial, score, True
            log.append(f"round {round_index} {name:13s} → {best[name]!r:8} {best_score:.3f} dB")
        if not changed:
            break
    return best


def full_scores(pairs: Pairs, config: dict[str, Any]) -> tuple[float, float, float]:
    method = DarkChannelPrior(**config)
    scores = [Scorer(clear)(method(hazy).image) for _, hazy, clear in pairs]
    return (
        float(np.mean([s.psnr for s in scores])),
        float(np.mean([s.ssim for s in scores])),
        float(np.mean([s.ciede2000 for s in scores])),
    )


def config_text(config: dict[str, Any], defaults: dict[str, Any]) -> str:
    changed = [f"{k}={v!r}" for k, v in config.items() if v != defaults[k]]
    return ", ".join(changed) if changed else "(defaults)"


def search(
    train: Pairs, defaults: dict[str, Any], log: list[str]
) -> tuple[dict[str, Any], Evaluator]:
    evaluate = Evaluator(train)
    coarse = descend(evaluate, defaults, COARSE, log)
    log.append(f"coarse optimum: {config_text(coarse, defaults)}")
    fine = coarse
    for _ in range(3):  # re-centre the fine grid until the optimum stays inside it
        previous = fine
        fine = descend(evaluate, fine, fine_grid(fine), log)
        if fine == previous:
            break
    log.append(f"fine optimum: {config_text(fine, defaults)}")
    return fine, evaluate


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="data root (default $DEHAZE_DATA)")
    parser.add_argument("--top", type=int, default=8, help="configurations to score fully")
    parser.add_argument("--holdout", action="store_true", help="tune on half the scenes")
    parser.add_argument("--output", type=Path, default=None, help="write the markdown here")
    parser.add_argument("--csv", type=Path, default=None, help="write every evaluated config")
    args = parser.parse_args(argv)
    for path in (args.output, args.csv):
        if path is not None and path.exists():
            print(f"sweep_dcp: {path} exists; not overwriting", file=sys.stderr)
            return 1
    root = args.data if args.data is not None else data_root()
    started = time.perf_counter()
    indoor = load(root / "sots" / "indoor")
    outdoor = load(root / "sots" / "outdoor") if (root / "sots" / "outdoor").is_dir() else []
    defaults = {
        f.name: f.default
        for f in dataclasses.fields(DarkChannelPrior)
        if f.name != "atmospheric_light"
    }
    log: list[str] = []
    out = io.StringIO()
    command = "python bench/sweep_dcp.py " + " ".join(argv if argv is not None else sys.argv[1:])
    out.write(f"Command: `{command.strip()}`\n\n")

    if args.holdout:
        ids = sorted({p.name.split("_")[0] for p, _, _ in indoor})
        first = set(ids[: len(ids) // 2])
        train = [t for t in indoor if t[0].name.split("_")[0] in first]
        test = [t for t in indoor if t[0].name.split("_")[0] not in first]
        best, evaluate = search(train, defaults, log)
        out.write(
            f"Hold-out check: tuned on scenes {min(first)}–{max(first)} ({len(train)} pairs), "
            f"scored on the other {len(test)} pairs.\n\n"
            "| configuration | tuned half PSNR / SSIM | held-out half PSNR / SSIM |\n"
            "|---|---|---|\n"
        )
        for name, config in (("defaults", defaults), ("tuned", best)):
            tr = full_scores(train, config)
            te = full_scores(test, config)
            out.write(
                f"| {name}: {config_text(config, defaults)} | {tr[0]:.2f} / {tr[1]:.4f} | "
                f"{te[0]:.2f} / {te[1]:.4f} |\n"
            )
    else:
        best, evaluate = search(indoor, defaults, log)
        ranked = sorted(evaluate.cache.items(), key=lambda kv: -kv[1])
        top = [dict(k) for k, _ in ranked[: args.top]]
        if defaults not in top:
            top.append(defaults)
        out.write(
            f"{len(evaluate.cache)} configurations searched on {len(indoor)} SOTS-indoor pairs "
            f"(objective: mean PSNR); the top {args.top} by PSNR and the defaults, scored "
            f"fully; outdoor: the same parameters on {len(outdoor)} SOTS-outdoor pairs.\n\n"
            "| configuration (changes from the defaults) | indoor PSNR | indoor SSIM | "
            "indoor CIEDE2000 | outdoor PSNR | outdoor SSIM |\n|---|---:|---:|---:|---:|---:|\n"
        )
        for config in top:
            p, s, c = full_scores(indoor, config)
            op, os_, _ = full_scores(outdoor, config) if outdoor else (float("nan"),) * 3
            out.write(
                f"| {config_text(config, defaults)} | {p:.2f} | {s:.4f} | {c:.2f} | "
                f"{op:.2f} | {os_:.4f} |\n"
            )
    out.write("\nSearch log:\n\n```\n" + "\n".join(log) + "\n```\n")
    out.write(
        f"\n{len(evaluate.cache)} configurations, {evaluate.seconds:.0f} s in the search, "
        f"{time.perf_counter() - started:.0f} s in total.\n"
    )
    text = out.getvalue()
    print(text)
    if args.output is not None:
        args.output.write_text(text)
    if args.csv is not None:
        with open(args.csv, "x", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow([*defaults, "psnr"])
            for key, score in evaluate.cache.items():
                config = dict(key)
                writer.writerow([*(config[k] for k in defaults), f"{score:.4f}"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
