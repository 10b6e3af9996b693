"""Turn a pytest-benchmark JSON file into a markdown table of ratios.

Usage: ``python bench/report.py bench.json`` — for each group, the median time of every
implementation and its speed-up over the slowest reference measured in the same run.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def main(path: str) -> None:
    data = json.load(open(path))
    groups: dict[str, dict[str, float]] = defaultdict(dict)
    for bench in data["benchmarks"]:
        name = bench["name"]
        impl = name[name.index("[") + 1 : -1] if "[" in name else name
        impl = "-".join(
            part for part in impl.split("-") if part not in ("620x460", "1920x1080", "3840x2160")
        )
        groups[bench["group"]][impl] = bench["stats"]["median"]
    info = data.get("machine_info", {})
    print(
        f"Machine: {info.get('cpu', {}).get('brand_raw', '?')}, "
        f"{info.get('cpu', {}).get('count', '?')} CPUs; {data.get('datetime', '')}\n"
    )
    print("| group | implementation | median ms | speed-up vs reference | vs opencv |")
    print("|---|---|---:|---:|---:|")
    for group in sorted(groups):
        impls = groups[group]
        ref = impls.get("reference")
        ocv = impls.get("opencv")
        for impl, t in sorted(impls.items(), key=lambda kv: kv[1]):
            r1 = f"{ref / t:.1f}×" if ref else ""
            r2 = f"{ocv / t:.1f}×" if ocv else ""
            print(f"| {group} | {impl} | {t * 1e3:.1f} | {r1} | {r2} |")


if __name__ == "__main__":
    main(sys.argv[1])
