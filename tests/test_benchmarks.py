"""The benchmarks run in a quick mode, so they never rot (their figures live in BENCHMARKS.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SHARED, shared_path

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_benchmark_video_part_quick(tmp_path):
    """The video part; training and inference run in the GPU script's dry run (test_gpu_tools)."""
    if not (SHARED / "video").is_dir():
        pytest.skip(f"needs the shared development data ({SHARED} is absent; see data/README.md)")
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "benchmarks.run", "--quick", "--only", "video", "--json", str(out)]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["video"]["chaplin.mp4"]["frames"] == 16
    assert "frames/s" in result.stdout


@pytest.mark.slow
def test_benchmark_recipe_quick(tmp_path):
    """The defaults benchmark end to end on one painting at a toy budget: figures and a sheet."""
    if not (SHARED / "photos" / "large").is_dir():
        pytest.skip(f"needs the shared development data ({SHARED} is absent; see data/README.md)")
    out, sheets = tmp_path / "recipe.json", tmp_path / "sheets"
    budget = ["--paintings", "candy", "--steps", "2", "--size", "64", "--every", "200", "--held-out", "2"]
    cmd = [sys.executable, "-m", "benchmarks.recipe", *budget, "--eval-size", "96", "--sheets", str(sheets)]
    cmd += ["--json", str(out)]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())["results"]["candy"]
    assert set(figures) == {"old", "new"}
    for config in figures.values():
        assert 0 < config["test"]["style_gap"] < 2 and 0 < config["held_out"]["content_err"] < 3
    assert (sheets / "candy.jpg").is_file()


@pytest.mark.slow
def test_benchmark_temporal_styles_quick():
    """Every-style flicker benchmark on one style and a short made pan: per frame and blended,
    the blend steadier."""
    if not (SHARED / "photos" / "large").is_dir():
        pytest.skip(f"needs the shared development data ({SHARED} is absent; see data/README.md)")
    cmd = [sys.executable, "-m", "benchmarks.temporal_styles", "--styles", "mosaic_fast", "--clips", "pan"]
    result = subprocess.run([*cmd, "--frames", "8"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["style"], r["clip"], r["temporal"]) for r in rows] == [
        ("mosaic_fast", "pan", 0),
        ("mosaic_fast", "pan", 0.9),
    ]
    assert rows[1]["temporal_error"] < 0.5 * rows[0]["temporal_error"]


def test_quality_measures_against_the_painting_the_model_was_trained_on(tmp_path, photo):
    """mosaic_fast is named after no painting: its figures are against mosaic.jpg, which its record
    names, and they are a stylisation's (a photo is at 1, its own painting at 0)."""
    shared_path("styles/mosaic.jpg")
    from benchmarks.quality import quality

    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / photo.name).symlink_to(photo)
    report = quality("mosaic_fast", None, folder)
    assert Path(report["style"]).name == "mosaic.jpg"
    assert 0.2 < report["mean"]["style_gap"] < 0.6


def test_the_flicker_standings_in_benchmarks_md_are_what_the_figures_files_hold():
    """BENCHMARKS.md's table of where every built-in stands against issue 16's targets is gathered
    from the committed figures files by benchmarks.temporal_status: a cell measured again, or a
    model recording another fade discount, must show there."""
    cmd = [sys.executable, "-m", "benchmarks.temporal_status"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 12 and result.stdout in (ROOT / "BENCHMARKS.md").read_text()
