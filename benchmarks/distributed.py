"""Training on a 2-core CPU: one process with 2 threads against torchrun's 2 processes x 1 thread.

The same run both ways (`--batch-size` is the step's batch, split over the processes), on the
shared training photos; images/s is read from the run's log.jsonl, leaving out the first window
(start-up). Median of --repeats runs of each, interleaved so that both see the same machine.

    python -m benchmarks.distributed --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from fast_nst.distributed import torchrun_command

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "photos" / "train"
PAINTING = ROOT / "tests" / "assets" / "mosaic.jpg"
WAYS = {
    "1 process x 2 threads": ([sys.executable, "-m", "fast_nst"], {"OMP_NUM_THREADS": "2"}),
    "2 processes x 1 thread (torchrun, gloo)": (torchrun_command(2), {"OMP_NUM_THREADS": "1"}),
}


def images_per_s(launch: list[str], env: dict[str, str], args: argparse.Namespace, folder: Path) -> float:
    run = folder / "run"
    cmd = [*launch, "train", "--style", str(PAINTING), "--data", str(args.data), "--steps", str(args.steps),
           "--batch-size", str(args.batch), "--image-size", str(args.size), "--workers", "0",
           "--log-every", str(args.steps // 4), "--out", str(folder / "m.pt"),
           "--run-dir", str(run)]  # fmt: skip
    subprocess.run(cmd, env={**os.environ, **env}, check=True, capture_output=True)
    rates = [json.loads(line)["images_per_s"] for line in (run / "log.jsonl").read_text().splitlines()]
    return statistics.median(rates[1:])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3, help="Runs of each way (the median is reported).")
    parser.add_argument("--steps", type=int, default=40, help="Steps per run.")
    parser.add_argument(
        "--batch", type=int, default=4, help="The step's batch (2 per process under torchrun)."
    )
    parser.add_argument("--size", type=int, default=128, help="Crop size in pixels.")
    parser.add_argument("--data", type=Path, default=DATA, help="Training photos.")
    args = parser.parse_args()
    rates: dict[str, list[float]] = {way: [] for way in WAYS}
    for _ in range(args.repeats):
        for way, (launch, env) in WAYS.items():
            with tempfile.TemporaryDirectory() as tmp:
                rates[way].append(images_per_s(launch, env, args, Path(tmp)))
    print(f"| way (batch {args.batch}, {args.size} px, {args.steps} steps) | images/s (median) | runs |")
    print("|---|---|---|")
    for way, values in rates.items():
        print(f"| {way} | {statistics.median(values):.2f} | {', '.join(f'{v:.2f}' for v in values)} |")


if __name__ == "__main__":
    main()
