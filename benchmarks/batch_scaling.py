"""Quality per training image at large batches: does batch B with lr * sqrt(B/4) match batch 4?

    python -m benchmarks.batch_scaling                 # CPU scale: 128 px crops, 1,600 images each
    python -m benchmarks.batch_scaling --images 160000 --size 256 --runs 4:sqrt,16:sqrt,64:sqrt  # a GPU

Every run trains the same painting on the same photos for the same number of *images*, so a
batch-16 run takes a quarter of the steps of a batch-4 run, each with the default schedule (warm-up,
cosine decay) and, by default, the trainer's learning-rate scaling (sqrt); a run may instead keep
batch 4's learning rate (none) or scale it linearly, to show what the rule buys. Quality: mean
style_gap / content_err on held-out photos of the large folder (`benchmarks.photos`), never
trained on.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

from fast_nst.train import LR_REFERENCE_BATCH, TrainConfig

from .photos import SHARED, held_out_sample
from .short_runs import Yardstick, main, train_quietly, training_subset


def run(args: argparse.Namespace) -> dict:
    runs = [(int(b), rule) for b, rule in (run.split(":") for run in args.runs.split(","))]
    held = held_out_sample(args.held_out)
    yardstick = Yardstick(held, args.style, args.eval_size)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = training_subset(Path(tmp) / "photos", args.every)
        for batch, rule in runs:
            name = f"batch {batch}, {rule} lr scaling"
            # The trainer scales --lr by sqrt(batch / 4); undo or extend that for the other rules.
            lr = args.lr * math.sqrt(batch / LR_REFERENCE_BATCH) ** {"sqrt": 0, "none": -1, "linear": 1}[rule]
            cfg = TrainConfig(
                style=str(args.style),
                data=str(data),
                out=f"{tmp}/{batch}{rule}.pt",
                run_dir=f"{tmp}/run{batch}{rule}",
                steps=args.images // batch,
                batch_size=batch,
                image_size=args.size,
                lr=lr,
                warmup=args.warmup,
                preview_count=0,
                checkpoint_every=10**9,
                log_every=10**9,
                device=args.device,
            )
            model, seconds = train_quietly(cfg)
            mean, _ = yardstick.measure(model)
            results[name] = {"steps": cfg.steps, "seconds": seconds, **mean}
            print(f"{name:<28} {cfg.steps:>6} steps  style_gap {mean['style_gap']:.3f}  "
                  f"content_err {mean['content_err']:.3f}  ({seconds:.0f} s)", flush=True)  # fmt: skip
    return {"images": args.images, "size": args.size, "held_out": len(held), "results": results}


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--style", type=Path, default=SHARED / "styles" / "mosaic.jpg")
    p.add_argument("--images", type=int, default=1600, help="training images per run")
    p.add_argument(
        "--runs",
        default="4:sqrt,16:sqrt,32:sqrt,32:none",
        help="BATCH:RULE,... where RULE scales the batch-4 --lr: sqrt (the trainer's), none or linear",
    )
    p.add_argument("--lr", type=float, default=1e-3, help="--lr of every run (the batch-4 peak)")
    p.add_argument("--warmup", type=float, default=TrainConfig.warmup, help="--warmup of every run")
    p.add_argument("--device", default="auto")


if __name__ == "__main__":
    main(__doc__, arguments, run)
