"""Turn a pytest-benchmark JSON file into a markdown table of ratios.

Usage: ``python bench/report.py bench.json`` — for each group, the median time of every
implementation and its speed-up over the reference and over OpenCV measured in the same
run, **only between implementations of the same computation**. A subsampled (fast guided
filter) variant computes an approximation, not what the exact reference computes, so it
gets no "speed-up vs reference": its row shows its time, and its speed-up over the other
implementations of the same subsampled computation if any were measured.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from typing import Any

SIZES = ("620x460", "1280x720", "1920x1080", "3840x2160")
#: Implementation-name parts that mark the fast guided filter (an approximation).
FAST_MARKERS = ("fast",)


def implementation(bench: dict[str, Any]) -> tuple[str, int]:
    """(implementation name, subsampling factor) of one benchmark record.

    The factor is ``extra_info["subsample"]`` when recorded (the factor's own part of the
    name is dropped), 0 for a "fast" variant of unrecorded factor, else 1 (exact).
    """
    name = bench["name"]
    impl = name[name.index("[") + 1 : -1] if "[" in name else name
    parts = [part for part in impl.split("-") if part not in SIZES]
    subsample = int(bench.get("extra_info", {}).get("subsample", 1))
    if "subsample" in bench.get("extra_info", {}) and str(subsample) in parts:
        parts.remove(str(subsample))
    if subsample == 1 and any(part in FAST_MARKERS for part in parts):
        subsample = 0
    return "-".join(parts), subsample


def ratio(numerator: float | None, t: float, same: bool) -> str:
    return f"{numerator / t:.1f}×" if numerator and same else ""


def main(path: str) -> None:
    with open(path) as handle:
        data = json.load(handle)
    # group -> computation (subsampling factor; 1 = exact) -> implementation -> median s
    groups: dict[str, dict[int, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for bench in data["benchmarks"]:
        impl, subsample = implementation(bench)
        groups[bench["group"]][subsample][impl] = bench["stats"]["median"]
    info = data.get("machine_info", {})
    print(
        f"Machine: {info.get('cpu', {}).get('brand_raw', '?')}, "
        f"{info.get('cpu', {}).get('count', '?')} CPUs; {data.get('datetime', '')}\n"
    )
    print("| group | implementation | median ms | speed-up vs reference | vs opencv |")
    print("|---|---|---:|---:|---:|")
    approximations = False
    for group in sorted(groups):
        rows = []
        for subsample, impls in groups[group].items():
            # ratios only within one computation: the same result up to rounding
            ref = impls.get("reference")
            ocv = impls.get("opencv")
            for impl, t in impls.items():
                label = impl
                if subsample != 1:
                    approximations = True
                    label += f" (subsample {subsample})" if subsample > 1 else " (subsampled)"
                    label += " †"
                same_ref = impl != "reference"
                same_ocv = impl != "opencv"
                rows.append((t, label, ratio(ref, t, same_ref), ratio(ocv, t, same_ocv)))
        for t, label, r1, r2 in sorted(rows):
            print(f"| {group} | {label} | {t * 1e3:.1f} | {r1} | {r2} |")
    if approximations:
        print(
            "\n† the fast guided filter computes an approximation of the exact filter: it is "
            "not compared with the exact reference (no reference of it was timed)."
        )


if __name__ == "__main__":
    main(sys.argv[1])
