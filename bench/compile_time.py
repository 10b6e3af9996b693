"""First-call cost: JIT compilation in a cold process, and the cached load in a second one.

Runs two fresh Python processes with the same empty ``NUMBA_CACHE_DIR``: the first compiles
every kernel the pipeline needs and writes the cache; the second loads it. Prints the
time of ``import dehaze`` and of the first and second ``dehaze.dehaze`` call in each.

Usage: ``python bench/compile_time.py``
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, time
t = time.perf_counter()
import numpy as np
import dehaze
t_import = time.perf_counter() - t
img = (np.random.default_rng(0).random((460, 620, 3)) * 200 + 40).astype(np.uint8)
t = time.perf_counter(); dehaze.dehaze(img); first = time.perf_counter() - t
t = time.perf_counter(); dehaze.dehaze(img); second = time.perf_counter() - t
print(json.dumps({"import": t_import, "first": first, "second": second}))
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        rows = []
        for label in ("cold cache (compiles)", "warm cache (second process)"):
            out = subprocess.run(
                [sys.executable, "-c", CHILD], env=env, check=True, capture_output=True, text=True
            ).stdout
            rows.append((label, json.loads(out.strip().splitlines()[-1])))
    print("| process | import dehaze s | first call s | second call s |")
    print("|---|---:|---:|---:|")
    for label, r in rows:
        print(f"| {label} | {r['import']:.2f} | {r['first']:.2f} | {r['second']:.3f} |")


if __name__ == "__main__":
    main()
