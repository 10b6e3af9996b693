"""Score dehazing methods on SOTS / O-HAZE pairs: per-image CSV, markdown table, plot.

Run it as ``dehaze bench``::

    dehaze bench                                  # every shared set, default methods
    dehaze bench --limit 5 --methods identity dcp "dcp:omega=0.9,guide=color"
    dehaze bench --data ~/RESIDE/SOTS/indoor --output sots-indoor-results

Data: ``--data`` (default ``$DEHAZE_DATA``, else ``../shared/data``) is either a data root
holding ``sots/indoor``, ``sots/outdoor`` and ``ohaze/``, a SOTS root holding ``indoor/``
and ``outdoor/``, or one folder with ``hazy/`` and ``gt/`` (or ``clear/``), read by
:mod:`dehaze.datasets`. Methods are named as everywhere else (:mod:`dehaze.registry`):
``name`` or ``name:key=value,key=value``.

The parts: :mod:`~dehaze.benchmark.runner` (timing and scoring),
:mod:`~dehaze.benchmark.report` (summaries, table, CSV), :mod:`~dehaze.benchmark.plot`
(PSNR vs time) and :mod:`~dehaze.benchmark.cli` (the command). Outputs in ``--output``
(default ``bench-results``): ``per_image.csv``, ``summary.md`` and ``psnr_vs_time.png``;
existing files are not replaced unless ``--overwrite`` is given.
"""

from __future__ import annotations

from dehaze.benchmark.cli import main
from dehaze.benchmark.plot import plot_psnr_vs_time
from dehaze.benchmark.report import Summary, markdown_table, summarize
from dehaze.benchmark.runner import DEFAULT_METHODS, Record, find_sets, run_benchmark

__all__ = [
    "DEFAULT_METHODS",
    "Record",
    "Summary",
    "find_sets",
    "main",
    "markdown_table",
    "plot_psnr_vs_time",
    "run_benchmark",
    "summarize",
]
