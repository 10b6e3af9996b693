"""The PSNR-versus-time figure of a benchmark run (matplotlib, imported only when drawing)."""

from __future__ import annotations

import importlib
import io
import math
from collections.abc import Sequence

from dehaze.benchmark.report import Summary

__all__ = ["plot_psnr_vs_time", "require_matplotlib"]


def require_matplotlib() -> None:
    """Raise ImportError with an install hint when matplotlib is missing."""
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        raise ImportError(
            "the PSNR-vs-time plot needs matplotlib, which is not installed: "
            "pip install matplotlib (or pip install -e '.[examples]' in a checkout), or pass "
            "--no-plot"
        ) from None


def plot_psnr_vs_time(rows: Sequence[Summary]) -> bytes:
    """Draw mean PSNR against median time per image (log scale); return PNG bytes.

    Needs matplotlib (the ``examples`` or ``test`` extra); uses its object API with the
    Agg canvas, so no global pyplot state is touched.
    """
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.0, 4.5), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    markers = ["o", "s", "^", "D", "v", "P", "X", "*"]
    splits = list(dict.fromkeys(r.split for r in rows))
    methods = list(dict.fromkeys(r.method for r in rows))
    colors = [f"C{i % 10}" for i in range(len(methods))]
    for row in rows:
        if math.isinf(row.psnr):
            continue
        axes.scatter(
            max(row.median_ms, 1e-3),
            row.psnr,
            marker=markers[splits.index(row.split) % len(markers)],
            color=colors[methods.index(row.method)],
            s=50,
        )
        axes.annotate(
            f"{row.method} ({row.split})",
            (max(row.median_ms, 1e-3), row.psnr),
            textcoords="offset points",
            xytext=(5, 4),
            fontsize=7,
        )
    axes.set_xscale("log")
    times = [max(r.median_ms, 1e-3) for r in rows if not math.isinf(r.psnr)]
    if times:
        axes.set_xlim(min(times) / 2.0, max(times) * 10.0)  # room for the labels
    axes.set_xlabel("median time per image (ms, log scale)")
    axes.set_ylabel("mean PSNR (dB)")
    axes.set_title("PSNR vs time (marker = split)")
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
