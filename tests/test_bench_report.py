"""bench/report.py: ratios only between implementations of the same computation."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_report():
    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "bench" / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def record(name: str, group: str, median: float, **extra) -> dict:
    return {"name": name, "group": group, "stats": {"median": median}, "extra_info": extra}


def table_rows(text: str) -> dict[tuple[str, str], list[str]]:
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("| group"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[(cells[0], cells[1])] = cells[2:]
    return rows


def test_subsampled_variants_get_no_speed_up_over_the_exact_reference(tmp_path, capsys):
    pipeline = "pipeline 1920x1080"
    guided = "guided_filter gray r=60 subsample 1920x1080"
    data = {
        "benchmarks": [
            record("test_pipeline[1920x1080-dehaze]", pipeline, 0.1),
            record("test_pipeline[1920x1080-dehaze-1-thread]", pipeline, 0.15),
            record("test_pipeline[1920x1080-dehaze-fast]", pipeline, 0.025),
            record("test_pipeline[1920x1080-reference]", pipeline, 3.0),
            record("test_pipeline[1920x1080-opencv]", pipeline, 0.5),
            record("test_guided_fast_variant[1920x1080-1-dehaze]", guided, 0.04, subsample=1),
            record("test_guided_fast_variant[1920x1080-4-dehaze]", guided, 0.01, subsample=4),
            record("test_guided_fast_variant[1920x1080-1-reference]", guided, 0.8, subsample=1),
        ]
    }
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(data))
    load_report().main(str(path))
    rows = table_rows(capsys.readouterr().out)
    # exact implementations: ratios to the reference and to OpenCV of the same computation
    assert rows[(pipeline, "dehaze")] == ["100.0", "30.0×", "5.0×"]
    assert rows[(pipeline, "dehaze-1-thread")] == ["150.0", "20.0×", "3.3×"]
    assert rows[(pipeline, "reference")] == ["3000.0", "", "0.2×"]
    assert rows[(guided, "dehaze")] == ["40.0", "20.0×", ""]  # the subsample group has a ratio
    # the fast variants compute an approximation: no speed-up over the exact reference
    assert rows[(pipeline, "dehaze-fast (subsampled) †")] == ["25.0", "", ""]
    assert rows[(guided, "dehaze (subsample 4) †")] == ["10.0", "", ""]


@pytest.mark.parametrize(
    ("name", "extra", "want"),
    [
        ("test_x[620x460-dehaze]", {}, ("dehaze", 1)),
        ("test_x[dehaze-fast-3840x2160]", {}, ("dehaze-fast", 0)),
        ("test_x[1920x1080-4-dehaze]", {"subsample": 4}, ("dehaze", 4)),
        ("test_x[1920x1080-dehaze-1-thread]", {}, ("dehaze-1-thread", 1)),
    ],
)
def test_implementation_names(name, extra, want):
    assert load_report().implementation({"name": name, "extra_info": extra}) == want
