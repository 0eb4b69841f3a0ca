"""What run.sh runs: the whole GPU session in one command, every part time-boxed, results packed.

Parts, in order: the environment; the benchmarks (alone on the GPU, so their figures are clean;
training and inference time-boxed apart);
then every built-in style trained concurrently for --train-seconds while the CUDA tests run beside
them; last, the results packed into at most 8 files of at most 15 MiB in --out (what the device
tool brings back). A part that fails is reported and the rest still run: one GPU session is rare.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
GPU = Path(os.environ.get("GPU_DIR", ROOT / ".gpu")).resolve()  # what prepare.sh built
MIB = 2**20
PACK_LIMIT = 15 * MIB
# The built-in styles, each trained with the defaults (only the light and fast ones' networks differ): the
# defaults are meant to need no per-painting recipe (BENCHMARKS.md, "The default recipe").
RECIPES: dict[str, list[str]] = {
    "mosaic": [],
    "mosaic_light": ["--width", "16"],
    "mosaic_fast": ["--width", "12", "--residual-blocks", "4"],
    "candy": [],
    "starry_night": [],
    "udnie": [],
    "wave": [],
    "the_scream": [],
}


class Report:
    """report.txt in --out, echoed to stdout as it is written."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("w")

    def __call__(self, text: str) -> None:
        print(text, flush=True)
        self.file.write(text + "\n")
        self.file.flush()


def environment(report: Report) -> None:
    report(f"python {platform.python_version()}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        report(f"GPU {p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs, "
               f"capability {p.major}.{p.minor}; cuDNN {torch.backends.cudnn.version()}; "
               f"bf16 {'yes' if torch.cuda.is_bf16_supported() else 'no'}")  # fmt: skip
        smi = subprocess.run(["nvidia-smi"], capture_output=True, text=True, check=False)
        report(smi.stdout.strip())
    else:
        report("no CUDA GPU: a dry run")


def run_part(report: Report, name: str, cmd: list[str], timeout: float) -> None:
    report(f"\n== {name}: {' '.join(cmd)}")
    start = time.perf_counter()
    try:
        result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
        report(result.stdout.strip() + ("\n" + result.stderr.strip()[-3000:] if result.returncode else ""))
        report(f"== {name}: exit {result.returncode} after {time.perf_counter() - start:.0f} s")
    except subprocess.TimeoutExpired as e:
        report(f"{e.stdout or ''}\n== {name}: stopped after its {timeout:.0f} s")


def training_plan(bench: Path, batch: int, seconds: float, dry: bool) -> tuple[int, int, int]:
    """(steps, crop size, batch) per style so that all styles, trained at once, finish in `seconds`.

    From the benchmark's images/s for one training process at this batch; the styles share the
    GPU, and a margin is kept. A run still going at the deadline is stopped like Ctrl-C, so its
    last checkpoint comes back either way.
    """
    if dry:  # two steps of two crops: eight processes share a CPU's cores
        return 2, 64, 2
    try:
        results = json.loads(bench.read_text())["training"]["results"]
        rate = results[f"fast-nst, batch {batch}"]["images_per_s"]
    except (OSError, KeyError, ValueError):
        rate = 1000.0  # no benchmark: a guess, the deadline still holds
    return max(10, int(0.8 * rate * seconds / len(RECIPES) / batch)), 256, batch


def train_styles(report: Report, work: Path, args: argparse.Namespace, bench: Path, tests: list[str]) -> None:
    deadline = time.time() + args.train_seconds
    steps, size, batch = training_plan(bench, args.batch, args.train_seconds, args.dry_run)
    crops = f"{steps} steps of batch {batch} at {size} px ({steps * batch} crops)"
    report(f"\n== training {len(RECIPES)} styles at once, each {crops}; the CUDA tests alongside")
    every = [str(max(1, steps // n)) for n in (50, 4, 4)]
    procs = {}
    for name, recipe in RECIPES.items():
        cmd = [sys.executable, "-m", "fast_nst", "train", "--style", str(GPU / "styles" / f"{name}.jpg"),
               "--data", str(GPU / "photos"), "--out", str(work / f"{name}.pt"),
               "--run-dir", str(work / name), "--steps", str(steps), "--batch-size", str(batch),
               "--image-size", str(size), "--log-every", every[0], "--preview-every", every[1],
               "--checkpoint-every", every[2], *recipe]  # fmt: skip
        if args.dry_run:
            cmd += ["--workers", "0", "--style-size", "128"]
        with (work / f"{name}.log").open("w") as log:
            procs[name] = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    run_part(report, "CUDA tests", tests, timeout=args.train_seconds)
    for proc in procs.values():
        try:
            proc.wait(timeout=max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)  # checkpoint after this step, then exit 130
    for name, proc in procs.items():
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        log = work / name / "log.jsonl"
        lines = log.read_text().splitlines() if log.is_file() else []
        last = json.loads(lines[-1]) if lines else {}
        report(f"{name}: exit {code}, step {last.get('step')}, loss {last.get('loss')}, "
               f"{last.get('images_per_s')} images/s (log: {name}.log)")  # fmt: skip


def half_models(report: Report, work: Path, dest: Path) -> None:
    """Each style's model (or last checkpoint, if stopped) as an fp16 file named by the style."""
    from fast_nst.files import torch_save
    from fast_nst.transformer import load_model, model_record

    dest.mkdir(parents=True, exist_ok=True)
    for name in RECIPES:
        source = work / f"{name}.pt"
        source = source if source.is_file() else work / name / "checkpoint.pt"
        if not source.is_file():
            report(f"{name}: no model, no checkpoint")
            continue
        net, record = load_model(source)
        torch_save(model_record(net, {**record["meta"], "style": name}, half=True), dest / f"{name}.pt")
        report(f"{name}: {record['meta']['steps']} steps -> {name}.pt")


def pack(files: list[Path], out: Path, stem: str, base: Path) -> list[Path]:
    """`files` into tars of at most PACK_LIMIT bytes each, named stem-1.tar, stem-2.tar..."""
    groups: list[list[Path]] = []
    size = PACK_LIMIT
    for f in files:
        if size + f.stat().st_size > PACK_LIMIT:
            groups.append([])
            size = 0
        groups[-1].append(f)
        size += f.stat().st_size + 1024  # tar's header and padding
    tars = [out / f"{stem}-{i + 1}.tar" for i in range(len(groups))]
    for path, group in zip(tars, groups, strict=True):
        with tarfile.open(path, "w") as tar:
            for f in group:
                tar.add(f, arcname=str(f.relative_to(base)))
    return tars


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True, help="where the results go ($OUT on the GPU machine)")
    p.add_argument("--dry-run", action="store_true", help="tiny sizes, on any machine: checks the script")
    p.add_argument("--train-seconds", type=float, default=180, help="wall time for training the styles")
    p.add_argument("--batch", type=int, default=16, help="training batch (learning rate scales with it)")
    args = p.parse_args()
    needed = ["vgg19_caffe_q.bin", *(f"styles/{name}.jpg" for name in RECIPES)]
    missing = [f for f in needed if not (GPU / f).is_file()]
    if missing:  # not prepared, or prepared before a built-in style was added
        sys.exit(f"error: {GPU} lacks {', '.join(missing)} (run tools/gpu/prepare.sh first)")
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path("/tmp/fast-nst-gpu-run")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    report = Report(args.out / "report.txt")
    started = time.perf_counter()
    environment(report)
    # Two parts, each with its own time box and file, so a slow one cannot cost the other's figures.
    quick = ["--quick"] if args.dry_run else ["--sizes", "1920x1080"]
    for part, timeout in (("training", 150), ("inference", 200)):
        run_part(report, f"{part} benchmark", [sys.executable, "-m", "benchmarks.run", "--only", part,
                 "--data", str(GPU / "photos"), "--style", str(GPU / "styles" / "mosaic.jpg"),
                 "--json", str(args.out / f"bench-{part}.json"), *quick], timeout=timeout)  # fmt: skip
    bench = args.out / "bench-training.json"
    tests = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-m",
        "cuda",
        "tests/test_cuda.py",
        "-p",
        "no:cacheprovider",
    ]
    args.train_started = time.time()
    train_styles(report, work, args, bench, tests)
    half_models(report, work, work / "models")
    runs = [f for name in RECIPES for f in sorted((work / name).glob("*")) if f.suffix in (".jsonl", ".png")]
    runs = [f for f in runs if f.suffix == ".jsonl" or f == max((work / f.parent.name).glob("preview_*.png"))]
    runs += sorted(work.glob("*.log"))
    packed = pack(sorted((work / "models").glob("*.pt")), args.out, "models", work / "models")
    packed += pack(runs, args.out, "runs", work)
    report(f"\npacked {', '.join(p.name for p in packed)}; {time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
