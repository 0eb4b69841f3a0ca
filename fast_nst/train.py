"""Train a TransformerNet on photos against one painting: the whole loop, top to bottom.

Johnson et al. (2016): minimise the perceptual loss of the network's output (style Grams of the
painting, VGG features of the input photo, total variation) with Adam over random crops.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import ClassVar

import torch
from rich.console import Console
from rich.markup import escape
from torch.nn.parallel import DistributedDataParallel

from .config import TrainConfig
from .data import DeviceCrops, find_images, make_loader, preview_split, require_readable, spaced_photos
from .device import amp_dtype
from .distributed import World, join, leave, peer_failed
from .errors import UserError
from .files import atomic_path, load_image_tensor, save_image, tensor_to_pil, torch_load, torch_save
from .losses import PerceptualLoss, Shake, parse_layer_weights
from .progress import progress_bar
from .styles import resolve_model
from .transformer import CHECKPOINT_FORMAT, TransformerNet, load_model, model_record
from .vgg import VGG19Encoder

BALANCE_PHOTOS = 8  # training photos that set the style layers' units (all but --style-loss gram)
LR_REFERENCE_BATCH = 4  # the batch --lr is given for (the paper's)
LR_FINAL = 0.1  # where the cosine schedule ends, as a share of the peak


def lr_at(step: int, steps: int, cfg: TrainConfig) -> float:
    """The learning rate of step `step` (0-based) of a `steps`-step run.

    A pure function of the two, so a resumed run follows the curve the uninterrupted run would.
    Raising --steps on resume stretches the curve to the new length: the run continues where the
    new curve is at its step (so the rate may rise again), as if it had been planned that long.
    Adam's updates are normalised by the gradient's scale, so a batch B times larger averages
    away sqrt(B) of the noise and can take sqrt(B)-times larger steps (Malladi et al. 2022). The
    warm-up is what makes that safe: Adam's first update moves every weight by the full learning
    rate, and at 2.8e-3 (batch 32) with a 1-step warm-up the network saturated on step 2 and never
    learned the style (style_gap 1.02 after 1,600 images, BENCHMARKS.md); warmed up over a
    quarter of the run, batches of 16 and 32 came within 10% of batch 4 per training image.
    """
    peak = cfg.lr * math.sqrt(cfg.batch_size / LR_REFERENCE_BATCH)
    warm = round(cfg.warmup * steps)
    if step < warm:
        return peak * (step + 1) / warm
    if cfg.lr_schedule == "constant":
        return peak
    progress = (step - warm) / max(1, steps - 1 - warm)
    return peak * (LR_FINAL + (1 - LR_FINAL) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train(
    cfg: TrainConfig, resume: Path | None = None, console: Console | None = None, overwrite: bool = False
) -> Path:
    """Run (or continue) training; returns the path of the model file written at the end.

    overwrite: replace a model file at `cfg.out_path` that this run did not write itself.
    Under torchrun, one of N processes (`distributed`): the first alone writes and reports.
    """
    cfg.validate()
    world = join(cfg.device, cfg.batch_size)
    try:
        return _train(cfg, world, resume, console, overwrite)
    except (torch.distributed.DistError, RuntimeError, KeyboardInterrupt) as e:
        # torchrun stops this process too (SIGTERM), at about the moment it finds the peer gone: if
        # the signal lands while that error is on its way out, the interrupt carries it.
        failure = e.__context__ if isinstance(e, KeyboardInterrupt) else e
        if failure is None or not peer_failed(world, failure):
            raise
        for sig in (signal.SIGTERM, signal.SIGINT):  # the message goes out first
            signal.signal(sig, signal.SIG_IGN)
        checkpoint = cfg.run_path / "checkpoint.pt"
        # gloo puts its source location first
        reason = re.sub(r"^\[[^\]]*\]\s*", "", str(failure).splitlines()[0])[:100]
        raise UserError(
            f"another process of this torchrun job stopped ({reason}); "
            f"the last checkpoint is intact: continue with --resume {checkpoint}"
        ) from None
    finally:
        leave(world)


def _train(
    cfg: TrainConfig, world: World, resume: Path | None, console: Console | None, overwrite: bool
) -> Path:
    console = (console or Console(stderr=True)) if world.main else Console(quiet=True)
    device = world.device
    dtype = amp_dtype(cfg.amp, device)
    channels_last = cfg.channels_last if cfg.channels_last is not None else device.type == "cuda"
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    out = cfg.out_path
    run_dir = cfg.run_path
    ckpt_path = run_dir / "checkpoint.pt"
    ckpt = load_checkpoint(resume) if resume is not None else None
    run_id = (ckpt or {}).get("run_id") or uuid.uuid4().hex
    torch.manual_seed(cfg.seed)
    # Every step has the same shapes: let cuDNN time its convolution algorithms once and keep the fastest.
    torch.backends.cudnn.benchmark = device.type == "cuda"

    # Data: training crops, and a few held-out photos that every preview grid shows.
    files = find_images(Path(cfg.data))
    require_readable(files, Path(cfg.data))
    refused = None
    if world.main:
        try:
            claim_run_files(run_dir, out, resume, ckpt["step"] if ckpt else 0, run_id, overwrite)
        except UserError as e:
            refused = e
    if world.agree(refused is not None):
        raise refused or UserError("the first process refused the run (its message says why)")
    files, previews = preview_split(files, cfg.preview_count, cfg.image_size)
    init = None
    if cfg.init is not None and resume is None:  # read before the loss network, so a wrong one fails at once
        init = initial_weights(cfg.init, cfg.width, cfg.residual_blocks)
    steps = cfg.steps if cfg.epochs is None else math.ceil(cfg.epochs * len(files) / cfg.batch_size)
    workers = cfg.workers if cfg.workers is not None else min(4, max(1, (os.cpu_count() or 2) - 1))

    # Loss network and style targets (computed once), transformer, optimizer.
    style_layers = parse_layer_weights(cfg.style_layers)
    content_layers = list(parse_layer_weights(cfg.content_layers))
    encoder = VGG19Encoder([*style_layers, *content_layers], cfg.vgg_weights).to(device)
    style = load_image_tensor(Path(cfg.style), cfg.painting_size).to(device)
    loss_fn = PerceptualLoss(
        encoder,
        [style],
        style_layers,
        content_layers,
        cfg.style_weight,
        cfg.content_weight,
        cfg.tv_weight,
        style_loss=cfg.style_loss,
        batch_mean=world.batch_mean if world.size > 1 else None,
    )
    if cfg.style_loss != "gram":
        _, sample = spaced_photos(files, BALANCE_PHOTOS, cfg.image_size)
        measured = loss_fn.balance_style_layers(sample.to(device))
        units = ", ".join(f"{n} {v:.2f}" for n, v in measured.items())
        console.print(f"style layers balanced: a plain photo's style loss per layer was {units}")
    model = TransformerNet(cfg.width, cfg.residual_blocks)
    if init is not None:
        model.load_state_dict(init)
    model = model.to(device, memory_format=memory_format)
    # Fused: one kernel for all parameters instead of a dozen ops per tensor (CPU and CUDA).
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=device.type in ("cpu", "cuda"))
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    step = 0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scaler.load_state_dict(ckpt["scaler"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        if "cuda" in ckpt["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state(ckpt["rng"]["cuda"])
        step = ckpt["step"]
        was = ckpt["config"]
        changed = [f"{k} {was[k]} -> {v}" for k, v in dataclasses.asdict(cfg).items() if was.get(k, v) != v]
        note = f" ({', '.join(changed)})" if changed else ""
        console.print(f"resumed from {resume} at step {step}{note}", markup=False)
    # Several processes: gradients averaged over them after each backward (all start from rank 0's weights).
    net = DistributedDataParallel(model) if world.size > 1 else model
    step_fn = torch.compile(net) if cfg.compile else net

    if data_on_device(cfg, device, len(files)):
        crops = DeviceCrops(files, cfg.image_size, device, console)
        loader = crops.batches(cfg.batch_size, cfg.seed, step, steps, world.rank, world.size)
    else:
        loader = make_loader(files, cfg.image_size, cfg.batch_size, cfg.seed, step, steps, workers,
                             device.type == "cuda", world.rank, world.size)  # fmt: skip
    if world.main:
        run_dir.mkdir(parents=True, exist_ok=True)
    tb = _tensorboard(run_dir) if cfg.tensorboard and world.main else None
    skipped: set[str] = set()
    sums, window_start, window_steps = torch.zeros(5, device=device), time.perf_counter(), 0
    progress = progress_bar("train", console, "stats")
    log_path = run_dir / "log.jsonl" if world.main else Path(os.devnull)
    with progress, log_path.open("a") as log, _StopOnSignal(console) as stop:
        task = progress.add_task("", total=steps, completed=step, stats="")
        for images, failed in loader:
            for message in failed:
                if message not in skipped:
                    skipped.add(message)
                    console.print(f"[yellow]warning:[/] skipped unreadable image {escape(message)}")
            x = images.to(device, non_blocking=True).float().div_(255)
            x = x.contiguous(memory_format=memory_format)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                targets = loss_fn.content_targets(x)
                if cfg.stability_weight:  # the photos and their shaken copies in one pass
                    shake = Shake.random(x)
                    y, y_shaken = step_fn(torch.cat([x, shake.photo(x)])).chunk(2)
                    stability = cfg.stability_weight * shake.error(y_shaken, y)
                else:
                    y, stability = step_fn(x), torch.zeros((), device=device)
                terms = loss_fn(y, targets)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, steps, cfg)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(terms.total + stability).backward()
            scaler.step(optimizer)
            scaler.update()
            step += 1
            window_steps += 1
            # Loss values stay on the device between log lines: no host sync per step.
            logged = [terms.total + stability, terms.style, terms.content, terms.tv, stability]
            sums += torch.stack(logged).detach()
            progress.update(task, completed=step)
            stopping = world.stop_after(step, stop.requested)  # every process after the same step

            if step % cfg.log_every == 0 or step == steps or stopping:
                elapsed = time.perf_counter() - window_start
                total, style_l, content_l, tv_l, stability_l = (world.mean(sums) / window_steps).tolist()
                record = {
                    "step": step,
                    "loss": total,
                    "style": style_l,
                    "content": content_l,
                    "tv": tv_l,
                    "stability": stability_l,
                    "lr": optimizer.param_groups[0]["lr"],
                    "images_per_s": window_steps * cfg.batch_size / elapsed,
                    "time": time.time(),
                }
                log.write(json.dumps(record) + "\n")
                log.flush()
                if tb is not None:
                    for k in ("loss", "style", "content", "tv", "stability", "images_per_s"):
                        tb.add_scalar(k, record[k], step)
                progress.update(
                    task,
                    stats=f"loss {total:.3f} (style {style_l:.3f} content "
                    f"{content_l:.3f} tv {tv_l:.4f})  {record['images_per_s']:.1f} img/s",
                )
                sums.zero_()
                window_start, window_steps = time.perf_counter(), 0
            if world.main and len(previews) and (step % cfg.preview_every == 0 or step == steps):
                save_preview(model, previews, run_dir / f"preview_{step:07d}.png")
            if world.main and (step % cfg.checkpoint_every == 0 or step == steps or stopping):
                save_checkpoint(ckpt_path, model, optimizer, scaler, step, cfg, run_id)
            if stopping:
                break
    if tb is not None:
        tb.close()
    if skipped:
        console.print(f"[yellow]{len(skipped)} unreadable image(s) skipped[/] (listed above)")
    if step < steps:
        console.print(
            f"stopped at step {step}/{steps}; continue with: fast-nst train --resume {ckpt_path}",
            markup=False,
        )
        raise KeyboardInterrupt
    meta = {"style": Path(cfg.style).stem, "steps": step, "run_id": run_id, "config": dataclasses.asdict(cfg)}
    if world.main:
        torch_save(model_record(model, meta), out)
    console.print(f"done: {step} steps; model written to {out} (run files in {run_dir})", markup=False)
    return out


def data_on_device(cfg: TrainConfig, device: torch.device, n_photos: int) -> bool:
    """Whether to decode the photos once into device memory (`DeviceCrops`).

    Automatic on CUDA when they take at most half the free memory (COCO's 83k photos at 256 px
    crops take 25 GB); a CPU step is slow enough that the loader's worker processes keep up.
    """
    if cfg.data_on_device is not None:
        return cfg.data_on_device
    if device.type != "cuda":
        return False
    return DeviceCrops.bytes_needed(n_photos, cfg.image_size) <= torch.cuda.mem_get_info(device)[0] // 2


def initial_weights(ref: str, width: int, n_residual: int) -> dict[str, torch.Tensor]:
    """The weights of a trained model to fine-tune from: a model file, a checkpoint or a built-in style.

    A network that already keeps the photo's structure and paints only has to learn a new palette
    and texture, which takes fewer steps than learning all of it from random weights.
    """
    net, _ = load_model(resolve_model(ref))
    if (net.width, net.n_residual) != (width, n_residual):
        raise UserError(
            f"--init {ref}: a width-{net.width} network with {net.n_residual} residual blocks, but this "
            f"run trains width {width} with {n_residual}"
        )
    return net.state_dict()


@torch.no_grad()
def save_preview(model: torch.nn.Module, photos: torch.Tensor, path: Path) -> None:
    """The held-out photos (top row) above the model's output for them (bottom row)."""
    device = next(model.parameters()).device
    out = model(photos.to(device)).float().cpu()
    grid = torch.cat([torch.cat(list(photos), dim=2), torch.cat(list(out), dim=2)], dim=1)
    save_image(tensor_to_pil(grid), path)


def claim_run_files(
    run_dir: Path, out: Path, resume: Path | None, step: int, run_id: str, overwrite: bool
) -> None:
    """Refuse, before any work, a run that would replace what it did not write: another run's
    checkpoint, this run's own checkpoint from a later step (resuming an older copy: branch with
    --run-dir), or a model file at `out` from another run or a later step (unless `overwrite`).

    A run is identified by `run_id`, made at its first step and kept through every resume. The
    log is cut back to `step`: a run killed after its last checkpoint redoes those steps.
    """
    ckpt_path = run_dir / "checkpoint.pt"
    if ckpt_path.exists() and not (resume is not None and ckpt_path.resolve() == Path(resume).resolve()):
        theirs = load_checkpoint(ckpt_path)
        if theirs.get("run_id") != run_id:
            raise UserError(
                f"{ckpt_path}: holds another run (step {theirs['step']}); continue it with --resume "
                f"{ckpt_path}, or give this run its own --run-dir"
            )
        if theirs["step"] > step:
            raise UserError(
                f"{ckpt_path}: this run is already at step {theirs['step']}, past the step {step} of "
                f"{resume}; continue with --resume {ckpt_path}, or branch with --run-dir NEW_FOLDER"
            )
    if out.exists() and not overwrite:
        record = torch_load(out, "model file")
        meta = record.get("meta", {}) if isinstance(record, dict) else {}
        if meta.get("run_id") != run_id or meta.get("steps", 0) > step:
            raise UserError(f"{out}: already exists (another --out, or --overwrite to replace it)")
    log = run_dir / "log.jsonl"
    if log.exists():
        lines = log.read_text().splitlines(keepends=True)
        kept = [line for line in lines if _logged_step(line) <= step]
        if kept != lines:
            with atomic_path(log) as tmp:
                tmp.write_text("".join(kept))


def _logged_step(line: str) -> float:
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return math.inf  # a line cut short by a kill: dropped


def save_checkpoint(path: Path, model, optimizer, scaler, step: int, cfg: TrainConfig, run_id: str) -> None:
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state()
    torch_save(
        {
            "format": CHECKPOINT_FORMAT,
            "run_id": run_id,
            "step": step,
            "config": dataclasses.asdict(cfg),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(),
            "rng": rng,
        },
        path,
    )


def load_checkpoint(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint")
    ckpt = torch_load(path, "checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path}: not a fast-nst training checkpoint")
    return ckpt


# Settings added after some checkpoints were written, with the values those runs trained with.
ADDED_SINCE = {"lr_schedule": "constant", "warmup": 0.0, "style_loss": "gram"}


# What a resumed run may change: where and how long it runs, the loss balance and the logging.
# Everything else (painting, network, crops, layers, seed) is the checkpoint's.
RESUME_MAY_CHANGE = (
    "steps", "epochs", "data", "out", "run_dir", "device", "workers", "data_on_device", "lr", "lr_schedule",
    "warmup", "style_weight", "content_weight", "tv_weight", "log_every", "preview_every", "checkpoint_every",
    "tensorboard",
)  # fmt: skip


def config_for_resume(path: Path, **overrides: object) -> TrainConfig:
    """The checkpoint's own config, with the settings a resumed run may change (RESUME_MAY_CHANGE)
    overridden; any other is an error, since the checkpoint's weights were made with it.

    A checkpoint of an older fast-nst continues as it ran: a setting it predates takes the value
    that reproduces its run, not today's default.
    """
    fixed = [f"--{name.replace('_', '-')}" for name in overrides if name not in RESUME_MAY_CHANGE]
    if fixed:
        raise UserError(
            f"{path}: {', '.join(fixed)} cannot change in a resumed run (the checkpoint fixes it)"
        )
    checkpoint = load_checkpoint(path)
    steps = overrides.get("steps")
    if isinstance(steps, int) and steps < checkpoint["step"]:
        raise UserError(f"{path}: already at step {checkpoint['step']}; --steps cannot be fewer")
    was = dict(checkpoint["config"])
    if "style_loss" not in was:  # older than --style-loss, whose --style-size None meant "as is"
        was["style_size"] = was.get("style_size", 512) or 0
    if was.pop("balance_layers", False):  # --style-loss balanced was --balance-layers
        was["style_loss"] = "balanced"
    return dataclasses.replace(TrainConfig(**(ADDED_SINCE | was)), **overrides)


class _StopOnSignal:
    """First Ctrl-C or SIGTERM: finish the step, save a checkpoint, stop. A second: stop at once.

    SIGTERM is what a scheduler or a cloud machine sends before it takes the machine back, so a
    preempted run keeps its last step too. Only in the main thread (the only one Python delivers
    signals to); elsewhere a no-op.
    """

    SIGNALS: ClassVar[dict[int, str]] = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}

    def __init__(self, console: Console) -> None:
        self.requested = False
        self.console = console
        self.previous: dict[int, object] = {}

    def __enter__(self) -> _StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            self.previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        name = self.SIGNALS[signum]
        self.console.print(f"\n{name}: saving a checkpoint after this step (again to quit now)")


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError("--tensorboard needs the tensorboard package (pip install tensorboard)") from None
    return SummaryWriter(str(run_dir))
