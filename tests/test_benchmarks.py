"""The benchmarks run in a quick mode, so they never rot (their figures live in BENCHMARKS.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SHARED

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_benchmark_entry_point_quick(tmp_path):
    if not (SHARED / "photos" / "train").is_dir():
        pytest.skip(f"needs the shared development data ({SHARED} is absent; see data/README.md)")
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "benchmarks.run", "--quick", "--json", str(out)]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    training = report["training"]["results"]
    assert set(training) == {"fast-nst, batch 4", "fast-nst, batch 8", "canonical example, batch 4"}
    assert all(r["images_per_s"] > 0 for r in training.values())
    seconds = report["inference"]["seconds"]
    assert all(isinstance(t, float) and t > 0 for row in seconds.values() for t in row.values()), seconds
    assert report["video"]["chaplin.mp4"]["frames"] == 16
    assert "vs canonical" in result.stdout and "frames/s" in result.stdout
