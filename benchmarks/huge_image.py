"""A 6000x4000 photo through `fast-nst stylize`: peak memory and time of each path, side by side.

Each run is a fresh process (the command as a user runs it), measured with getrusage; the photo
is the test asset upscaled. Also the figure that says how close tiling comes to the network run
on the whole image at once (which needs ~11 GB): mean absolute difference in 8-bit levels.

    python -m benchmarks.huge_image --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

PHOTO = Path(__file__).resolve().parent.parent / "tests" / "assets" / "chicago.jpg"
PATHS = {"default (ONNX Runtime, tiles in PyTorch)": [], "--backend torch": ["--backend", "torch"]}
# The command, then its peak memory (kB) on the last line of stderr: VmHWM, this process's own
# (getrusage's ru_maxrss would start at the parent's RSS, which Linux carries across exec).
MEASURE = (
    "import sys; from fast_nst.cli import app\n"
    "try: app(prog_name='fast-nst')\n"
    "finally: print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0], file=sys.stderr)"
)


def run(args: list[str]) -> tuple[float, float]:
    """(seconds, peak GB) of one `fast-nst` command in its own process."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", MEASURE, *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(result.stderr)
    return seconds, int(result.stderr.split()[-1]) / 2**20


def untiled_difference(big: Path, out: Path) -> float:
    from fast_nst.files import load_image_tensor
    from fast_nst.runtime import Stylizer

    whole = Stylizer.load("mosaic", backend="torch").backend(load_image_tensor(big))
    return ((load_image_tensor(out) - whole).abs().mean() * 255).item()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3, help="Runs of each path (the median is reported).")
    parser.add_argument("--size", default="6000x4000", help="WxH of the photo.")
    parser.add_argument(
        "--untiled", action="store_true", help="Also compare with the untiled result (~11 GB)."
    )
    args = parser.parse_args()
    w, h = map(int, args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.jpg"
        Image.open(PHOTO).resize((w, h), Image.Resampling.LANCZOS).save(big, quality=92)
        print(f"| path ({w}x{h}, style mosaic) | median s | peak GB |\n|---|---|---|")
        for name, extra in PATHS.items():
            out = Path(tmp) / f"{len(extra)}.png"
            runs = [run(["stylize", str(big), "--style", "mosaic", "-o", str(out), "--overwrite", *extra])
                    for _ in range(args.repeats)]  # fmt: skip
            print(f"| {name} | {statistics.median(s for s, _ in runs):.1f} | {max(g for _, g in runs):.2f} |")
        if args.untiled:
            difference = untiled_difference(big, Path(tmp) / "0.png")
            print(f"default vs untiled: mean |difference| {difference:.2f} / 255")


if __name__ == "__main__":
    main()
