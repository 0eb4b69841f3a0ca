"""The `fast-nst` command line: one sub-command per job, every option documented in --help."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from . import __version__
from .errors import UserError

err = Console(stderr=True, highlight=False)


class _App(typer.Typer):
    """A Typer app that shows a `UserError` as one line and exit code 1, never a traceback."""

    def __call__(self, *args: object, **kwargs: object) -> object:
        # SIGTERM (a scheduler, `kill`) ends a command the way Ctrl-C does: temporary files are
        # removed and a training run saves its checkpoint, instead of dying where it stands.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            return super().__call__(*args, **kwargs)
        except UserError as e:
            err.print(f"[bold red]error:[/] {e}", soft_wrap=True)
            sys.exit(1)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


app = _App(
    name="fast-nst",
    help="Train feed-forward style-transfer networks from one painting, and run them fast.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"fast-nst {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Train feed-forward style-transfer networks from one painting, and run them fast."""


DATA, LOSS, OPTIM, OUTPUT, SPEED = "Data", "Loss", "Optimisation", "Output and logging", "Speed"


# What a resumed run may change: where and how long it runs, the loss balance and the logging.
# Everything else (painting, network, crops, layers, seed) is the checkpoint's.
RESUME_MAY_CHANGE = (
    "steps", "epochs", "data", "out", "device", "workers", "data_on_device", "lr", "lr_schedule", "warmup",
    "style_weight", "content_weight", "tv_weight", "log_every", "preview_every", "checkpoint_every",
    "tensorboard",
)  # fmt: skip


@app.command()
def train(
    ctx: typer.Context,
    style: Annotated[
        Path | None,
        typer.Option(help="The painting to learn, any image file.", rich_help_panel=DATA),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            help="Folder of training photos (any tree of jpg/png/webp/bmp, e.g. COCO's train2014/).",
            rich_help_panel=DATA,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Model file to write at the end.",
            show_default="models/<style name>.pt",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Continue a run from its checkpoint (runs/<name>/checkpoint.pt) with its settings; "
            "--steps/--epochs, --data, --out, --device, --workers, the loss weights, --lr and the "
            "logging options may change (e.g. a lower --content-weight for a stronger style).",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option(
            help="Optimiser steps (the paper: 40000, 2 COCO epochs at batch 4).",
            show_default="40000",
            rich_help_panel=OPTIM,
        ),
    ] = None,
    epochs: Annotated[
        float | None,
        typer.Option(
            help="Passes over the photos instead of --steps (fractions allowed).",
            rich_help_panel=OPTIM,
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Photos per step.", rich_help_panel=OPTIM)] = 4,
    image_size: Annotated[
        int,
        typer.Option(help="Side of the random square crops trained on, in pixels.", rich_help_panel=DATA),
    ] = 256,
    lr: Annotated[
        float,
        typer.Option(
            help="Adam's peak learning rate for batch 4; a batch of B uses lr * sqrt(B/4).",
            rich_help_panel=OPTIM,
        ),
    ] = 1e-3,
    lr_schedule: Annotated[
        str,
        typer.Option(
            help="cosine: warm up, then decay to a tenth of the peak by the last step; constant: "
            "warm up, then hold the peak.",
            rich_help_panel=OPTIM,
        ),
    ] = "cosine",
    warmup: Annotated[
        float,
        typer.Option(
            help="Share of the run spent raising the learning rate from 0 to its peak (0 to 1); "
            "large batches need it.",
            rich_help_panel=OPTIM,
        ),
    ] = 0.25,
    style_weight: Annotated[
        float,
        typer.Option(
            help="Weight of the style (Gram) loss; raise for stronger texture.",
            rich_help_panel=LOSS,
        ),
    ] = 10.0,
    content_weight: Annotated[
        float,
        typer.Option(
            help="Weight of the content (feature) loss; raise to keep more of the photo.",
            rich_help_panel=LOSS,
        ),
    ] = 1.0,
    tv_weight: Annotated[
        float,
        typer.Option(
            help="Weight of the total-variation loss; raise against speckle noise.",
            rich_help_panel=LOSS,
        ),
    ] = 10.0,
    style_layers: Annotated[
        str,
        typer.Option(help="VGG19 layers for style, optionally NAME:WEIGHT.", rich_help_panel=LOSS),
    ] = "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1",
    content_layers: Annotated[
        str,
        typer.Option(help="VGG19 layer(s) for content; relu2_2 keeps more detail.", rich_help_panel=LOSS),
    ] = "relu4_2",
    style_size: Annotated[
        int | None,
        typer.Option(
            help="Resize the painting to this long side in pixels (0: as is); larger = finer strokes.",
            rich_help_panel=LOSS,
        ),
    ] = 512,
    balance_layers: Annotated[
        bool,
        typer.Option(
            "--balance-layers/--no-balance-layers",
            help="Measure each style layer against how far plain photos are from the painting there, "
            "so brushwork layers count as much as colour (the balance of evaluate --metric gap).",
            rich_help_panel=LOSS,
        ),
    ] = False,
    vgg_weights: Annotated[
        str,
        typer.Option(
            help="Loss network weights: 'caffe' (original VGG, built in), 'torchvision' "
            "(downloaded once) or a state-dict file.",
            rich_help_panel=LOSS,
        ),
    ] = "caffe",
    width: Annotated[
        int,
        typer.Option(
            help="Channels of the network's first layer: 32 as in the paper, 16 for a ~3.7x faster model.",
            rich_help_panel=OPTIM,
        ),
    ] = 32,
    init: Annotated[
        str | None,
        typer.Option(
            help="Start from a trained model's weights (a .pt file, a checkpoint or a built-in "
            "style name) instead of random ones: fine-tuned from a trained style, a new painting "
            "needs fewer steps.",
            rich_help_panel=OPTIM,
        ),
    ] = None,
    seed: Annotated[
        int,
        typer.Option(
            help="Seed for the initial weights and the order and crops of the photos.",
            rich_help_panel=OPTIM,
        ),
    ] = 0,
    device: Annotated[
        str | None,
        typer.Option(
            help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps.",
            show_default="auto",
            rich_help_panel=SPEED,
        ),
    ] = None,
    amp: Annotated[
        str,
        typer.Option(
            help="Mixed precision: auto (bf16, else fp16, on CUDA; off elsewhere), bf16, fp16 or off.",
            rich_help_panel=SPEED,
        ),
    ] = "auto",
    channels_last: Annotated[
        bool | None,
        typer.Option(
            "--channels-last/--no-channels-last",
            help="NHWC memory layout.",
            show_default="on for CUDA",
            rich_help_panel=SPEED,
        ),
    ] = None,
    compile: Annotated[
        bool,
        typer.Option(
            "--compile",
            help="torch.compile the network (slower start, faster steps).",
            rich_help_panel=SPEED,
        ),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Data loader processes.",
            show_default="up to 4, one core left for training",
            rich_help_panel=SPEED,
        ),
    ] = None,
    data_on_device: Annotated[
        bool | None,
        typer.Option(
            "--data-on-device/--no-data-on-device",
            help="Decode every photo once into the GPU's memory and crop there (no loader bottleneck "
            "at thousands of images/s).",
            show_default="on for CUDA when the photos take under half the free memory",
            rich_help_panel=SPEED,
        ),
    ] = None,
    run_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where checkpoints, previews and log.jsonl go.",
            show_default="runs/<model name>",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    log_every: Annotated[
        int,
        typer.Option(help="Steps between log lines (losses, images/s).", rich_help_panel=OUTPUT),
    ] = 50,
    preview_every: Annotated[
        int,
        typer.Option(help="Steps between preview grids of held-out photos.", rich_help_panel=OUTPUT),
    ] = 500,
    checkpoint_every: Annotated[
        int,
        typer.Option(
            help="Steps between checkpoints (also saved at the end and on Ctrl-C).",
            rich_help_panel=OUTPUT,
        ),
    ] = 1000,
    tensorboard: Annotated[
        bool,
        typer.Option(
            "--tensorboard",
            help="Also log to TensorBoard in the run folder (needs tensorboard installed).",
            rich_help_panel=OUTPUT,
        ),
    ] = False,
) -> None:
    """Train a style network from one painting on a folder of photos.

    Example: fast-nst train --style starry_night.jpg --data train2014/ --steps 40000

    Shows a progress bar; writes preview grids, log.jsonl and checkpoints to the run folder.
    Ctrl-C saves a checkpoint; continue with --resume runs/<name>/checkpoint.pt.
    """
    from .train import TrainConfig, config_for_resume
    from .train import train as run_training

    if resume is not None:
        # Typer ships its own copy of click, so its ParameterSource enum is compared by name.
        given = [
            name
            for name in ctx.params
            if getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"
        ]
        fixed = [
            f"--{name.replace('_', '-')}" for name in given if name not in (*RESUME_MAY_CHANGE, "resume")
        ]
        if fixed:
            raise UserError(
                f"{resume}: {', '.join(fixed)} cannot change in a resumed run (the checkpoint fixes it)"
            )
        changes = {name: ctx.params[name] for name in given if name in RESUME_MAY_CHANGE}
        cfg = config_for_resume(
            resume, **{k: _str(v) if isinstance(v, Path) else v for k, v in changes.items()}
        )
    else:
        if style is None or data is None:
            raise UserError("train needs --style PAINTING and --data PHOTO_FOLDER (or --resume CHECKPOINT)")
        if not style.is_file():
            raise UserError(f"{style}: style image not found")
        out = out or Path("models") / f"{style.stem}.pt"
        cfg = TrainConfig(
            style=str(style),
            data=str(data),
            out=str(out),
            run_dir=_str(run_dir),
            steps=steps or TrainConfig.steps,
            epochs=epochs,
            batch_size=batch_size,
            image_size=image_size,
            lr=lr,
            lr_schedule=lr_schedule,
            warmup=warmup,
            style_weight=style_weight,
            content_weight=content_weight,
            tv_weight=tv_weight,
            style_layers=style_layers,
            content_layers=content_layers,
            style_size=style_size or None,
            balance_layers=balance_layers,
            width=width,
            init=init,
            vgg_weights=vgg_weights,
            seed=seed,
            device=device or "auto",
            amp=amp,
            channels_last=channels_last,
            compile=compile,
            workers=workers,
            data_on_device=data_on_device,
            log_every=log_every,
            preview_every=preview_every,
            checkpoint_every=checkpoint_every,
            tensorboard=tensorboard,
        )
    try:
        run_training(cfg, resume=resume, console=err)
    except KeyboardInterrupt:
        sys.exit(130)


def _str(p: Path | None) -> str | None:
    return None if p is None else str(p)


@app.command()
def optimize(
    content: Annotated[Path, typer.Argument(help="The photo to stylise.", show_default=False)],
    styles: Annotated[
        list[Path], typer.Argument(help="One or more paintings (blend several with --style-blend).")
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Image to write (.png, .jpg, .webp); replaced if it exists, as you named it.",
            rich_help_panel=OUTPUT,
        ),
    ],
    size: Annotated[
        int | None,
        typer.Option(help="Long side of the result in pixels.", show_default="512", rich_help_panel=DATA),
    ] = None,
    scales: Annotated[
        str | None,
        typer.Option(
            help="Coarse-to-fine long sides, e.g. 256,512,1024: each scale starts from the previous "
            "result, upsampled (for 1024 px and more). Ends at --size.",
            rich_help_panel=DATA,
        ),
    ] = None,
    iters: Annotated[int, typer.Option(help="Iterations per scale.", rich_help_panel=OPTIM)] = 500,
    optimizer: Annotated[
        str, typer.Option(help="lbfgs (best per iteration) or adam.", rich_help_panel=OPTIM)
    ] = "lbfgs",
    lr: Annotated[
        float | None,
        typer.Option(help="Step size.", show_default="1.0 for lbfgs, 0.02 for adam", rich_help_panel=OPTIM),
    ] = None,
    init: Annotated[
        str,
        typer.Option(
            help="Start from the content photo, white noise, or the (first) style image.",
            rich_help_panel=OPTIM,
        ),
    ] = "content",
    style_blend: Annotated[
        str | None,
        typer.Option(
            help="One weight per style image, e.g. 0.7,0.3.", show_default="equal", rich_help_panel=LOSS
        ),
    ] = None,
    style_weight: Annotated[
        float, typer.Option(help="Weight of the style loss; raise for more texture.", rich_help_panel=LOSS)
    ] = 10.0,
    content_weight: Annotated[
        float,
        typer.Option(
            help="Weight of the content loss; raise to keep more of the photo.", rich_help_panel=LOSS
        ),
    ] = 1.0,
    tv_weight: Annotated[
        float,
        typer.Option(help="Weight of the total-variation loss; raise against noise.", rich_help_panel=LOSS),
    ] = 1.0,
    style_layers: Annotated[
        str, typer.Option(help="VGG19 layers for style, optionally NAME:WEIGHT.", rich_help_panel=LOSS)
    ] = "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1",
    content_layers: Annotated[
        str, typer.Option(help="VGG19 layer(s) for content.", rich_help_panel=LOSS)
    ] = "relu4_2",
    style_scale: Annotated[
        float,
        typer.Option(
            help="Painting's long side relative to the image's at each scale; larger = bigger strokes.",
            rich_help_panel=LOSS,
        ),
    ] = 1.0,
    vgg_weights: Annotated[
        str,
        typer.Option(
            help="Loss network weights: caffe, torchvision or a state-dict file.", rich_help_panel=LOSS
        ),
    ] = "caffe",
    preserve_color: Annotated[
        bool,
        typer.Option(
            "--preserve-color",
            help="Keep the photo's colours (style in luminance only).",
            rich_help_panel=OUTPUT,
        ),
    ] = False,
    save_every: Annotated[
        int | None,
        typer.Option(help="Also write OUT_<scale>px_<iteration> every N iterations.", rich_help_panel=OUTPUT),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for --init noise.", rich_help_panel=OPTIM)] = 0,
    device: Annotated[
        str, typer.Option(help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps.", rich_help_panel=SPEED)
    ] = "auto",
    amp: Annotated[
        str,
        typer.Option(
            help="Mixed precision for the VGG pass: auto (bf16 on CUDA for adam; off for lbfgs, whose "
            "curvature estimate needs exact gradients), bf16, fp16 or off.",
            rich_help_panel=SPEED,
        ),
    ] = "auto",
) -> None:
    """Stylise one photo by optimising its pixels (Gatys et al.): slow, the best quality.

    Example: fast-nst optimize photo.jpg painting.jpg -o out.png --size 1024 --scales 256,512,1024
    """
    from .optimize import OptimizeConfig, parse_blend, parse_scales
    from .optimize import optimize as run_optimize

    cfg = OptimizeConfig(
        content=str(content),
        styles=[str(s) for s in styles],
        out=str(out),
        blend=parse_blend(style_blend),
        scales=parse_scales(scales, size),
        iters=iters,
        optimizer=optimizer,
        lr=lr,
        init=init,
        style_weight=style_weight,
        content_weight=content_weight,
        tv_weight=tv_weight,
        style_layers=style_layers,
        content_layers=content_layers,
        style_scale=style_scale,
        vgg_weights=vgg_weights,
        preserve_color=preserve_color,
        save_every=save_every,
        seed=seed,
        device=device,
        amp=amp,
    )
    try:
        run_optimize(cfg, console=err)
    except KeyboardInterrupt:
        sys.exit(130)
    err.print(f"wrote {out}")


@app.command()
def evaluate(
    outputs: Annotated[list[Path], typer.Argument(help="Stylised images to measure.", show_default=False)],
    content: Annotated[
        Path,
        typer.Option(
            help="The photo the outputs were made from; or a folder of photos, each output matched to "
            "the photo its name starts with (chicago.jpg for chicago_mosaic.png).",
        ),
    ],
    style: Annotated[Path, typer.Option(help="The painting.")],
    metric: Annotated[
        str,
        typer.Option(
            help="loss: unweighted style loss per layer and content loss; gap: style_gap (0 = the "
            "painting's statistics, 1 = no closer than the photo) and content_err.",
        ),
    ] = "loss",
    size: Annotated[int, typer.Option(help="Long side everything is resized to before measuring.")] = 512,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
) -> None:
    """Measure outputs against the photo and painting (caffe VGG19, standard layers).

    Example: fast-nst evaluate --content photo.jpg --style painting.jpg out1.png out2.png --metric gap
    """
    import json

    from .evaluate import evaluate_files, report_table
    from .train import pick_device

    report = evaluate_files(outputs, content, style, metric, size, pick_device(device))
    if json_out:
        print(json.dumps(report, indent=2))
    else:
        # Piped output keeps every column rather than rich's default 80-column cut.
        Console(width=None if sys.stdout.isatty() else 160).print(report_table(report))


STYLIZE_IMAGE, STYLIZE_RUN = "Image", "Runtime"


@app.command()
def stylize(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="[MODEL] SOURCE: a model file (.pt from `fast-nst train`, or .onnx), then an image, "
            "a folder of images (recursive) or a video. Leave out MODEL when using --style.",
            metavar="[MODEL] SOURCE",
            show_default=False,
        ),
    ],
    style: Annotated[
        str | None,
        typer.Option(
            "--style",
            "-s",
            help="A built-in style by name instead of a model file (list them: fast-nst styles).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Output file (format from its extension) or folder.",
            show_default="<input>_<style>",
        ),
    ] = None,
    strength: Annotated[
        float, typer.Option(help="1: full style, 0: the input unchanged.", rich_help_panel=STYLIZE_IMAGE)
    ] = 1.0,
    preserve_color: Annotated[
        bool,
        typer.Option("--preserve-color", help="Keep the input's colours.", rich_help_panel=STYLIZE_IMAGE),
    ] = False,
    max_size: Annotated[
        int | None,
        typer.Option(help="Shrink images to this long side first (pixels).", rich_help_panel=STYLIZE_IMAGE),
    ] = None,
    scale: Annotated[
        float | None, typer.Option(help="Resize images by this factor first.", rich_help_panel=STYLIZE_IMAGE)
    ] = None,
    tile: Annotated[
        int | None,
        typer.Option(
            help="Stylise in tiles of this side (bounded memory).",
            show_default="automatic above 2048x2048 pixels",
            rich_help_panel=STYLIZE_IMAGE,
        ),
    ] = None,
    overlap: Annotated[
        int, typer.Option(help="Pixels shared by neighbouring tiles.", rich_help_panel=STYLIZE_IMAGE)
    ] = 128,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.", rich_help_panel=STYLIZE_RUN)] = "auto",
    backend: Annotated[
        str | None,
        typer.Option(
            help="torch or onnxruntime.",
            show_default="onnxruntime on a CPU (a .pt is exported once, cached), torch on a GPU",
            rich_help_panel=STYLIZE_RUN,
        ),
    ] = None,
    precision: Annotated[
        str,
        typer.Option(
            help="fp32, fp16 or bf16 (fp16/bf16 pay off on a GPU; fp16 also enables TensorRT fp16).",
            rich_help_panel=STYLIZE_RUN,
        ),
    ] = "fp32",
    compile: Annotated[
        bool,
        typer.Option(
            "--compile",
            help="torch.compile the network: a slow first frame at each new size, then faster (long videos).",
            rich_help_panel=STYLIZE_RUN,
        ),
    ] = False,
    batch_size: Annotated[
        int, typer.Option(help="Frames or tiles per network call.", rich_help_panel=STYLIZE_RUN)
    ] = 4,
    frames: Annotated[
        int | None,
        typer.Option(help="Videos: stylise only the first N frames (a quick preview).", min=1),
    ] = None,
) -> None:
    """Stylise an image, a folder of images or a video (sound kept).

    Examples: fast-nst stylize photo.jpg --style mosaic -o out.jpg;
    fast-nst stylize models/mosaic.onnx photos/ -o stylized/
    """
    from .runtime import Stylizer, stylize_folder, stylize_image_file
    from .styles import builtin_style
    from .video import is_video_path, stylize_video

    if len(paths) != (1 if style else 2):
        usage = "fast-nst stylize MODEL SOURCE, or fast-nst stylize SOURCE --style NAME"
        raise UserError(f"expected {'one path' if style else 'a model and a source'} ({usage})")
    model, source = (style, paths[0]) if style else (paths[0], paths[1])
    if style:
        builtin_style(style)  # a mistyped name is the likelier mistake: say so first
    if not source.exists():
        raise UserError(f"{source}: no such file or folder")
    if (scale is not None and scale <= 0) or (max_size is not None and max_size < 1):
        raise UserError("--scale and --max-size must be positive")
    stylizer = Stylizer.load(
        model,
        device=device,
        backend=backend,
        precision=precision,
        compile=compile,
        strength=strength,
        preserve_color=preserve_color,
        tile=tile,
        overlap=overlap,
        batch_size=batch_size,
    )
    suffix = "" if source.is_dir() else source.suffix
    out = out or source.with_name(f"{source.stem}_{stylizer.style}{suffix}")
    if source.is_dir():
        report = stylize_folder(stylizer, source, out, max_size, scale, overwrite, console=err)
        err.print(f"{report.done} image(s) written to {out}", soft_wrap=True)
        if report.failed:
            err.print(f"[bold red]{len(report.failed)} failed:[/]")
            for line in report.failed:
                err.print(f"  {line}", soft_wrap=True)
            failed = len(report.failed)
            raise UserError(f"{failed} of {report.done + failed} images failed (listed above)")
    elif is_video_path(source):
        video = stylize_video(stylizer, source, out, overwrite, console=err, max_frames=frames)
        err.print(f"{out}: {video.frames} frames at {video.fps:g} fps, audio {video.audio}", soft_wrap=True)
        if video.damage:
            raise UserError(f"{source}: damaged, stylised up to frame {video.frames} ({video.damage})")
    else:
        stylize_image_file(stylizer, source, out, max_size, scale, overwrite)
        err.print(f"{out}: written", soft_wrap=True)


@app.command()
def export(
    model: Annotated[Path, typer.Argument(help="Model file from `fast-nst train` (.pt).")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="ONNX file to write.", show_default="<model>.onnx")
    ] = None,
    fp16: Annotated[
        bool, typer.Option("--fp16", help="Half-precision weights inside (input/output stay float32).")
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing file.")] = False,
) -> None:
    """Export to ONNX (opset 18, any batch and image size) and check it against PyTorch.

    Example: fast-nst export models/mosaic.pt -o models/mosaic.onnx
    """
    from .export import export_onnx

    report = export_onnx(model, out or model.with_suffix(".onnx"), fp16=fp16, overwrite=overwrite)
    diffs = ", ".join(f"{size}: {d:.2e}" for size, d in report.max_abs_diff.items())
    print(f"{report.path}: written; max |onnxruntime - torch| {diffs} (limit {report.tolerance:g})")


@app.command()
def styles() -> None:
    """List the built-in styles (use one with: fast-nst stylize photo.jpg --style NAME).

    Their model cards, with training settings and quality figures, are in models/README.md; the
    preview sheet printed below shows a test photo in each of them.
    """
    from rich.table import Table

    from .styles import builtin_styles, models_folder

    found = builtin_styles()
    if not found:
        raise UserError(f"no built-in styles are installed (looked in {models_folder()})")
    table = Table("name", "painting", "credit and licence", "style gap", "content error")
    for s in found.values():
        gap, error = s.quality.get("style_gap"), s.quality.get("content_err")
        table.add_row(
            s.name,
            s.painting,
            f"{s.credit}; {s.licence}",
            f"{gap:.2f}" if gap is not None else "",
            f"{error:.2f}" if error is not None else "",
        )
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    gallery = models_folder() / "gallery.jpg"
    if gallery.is_file():
        print(f"preview sheet: {gallery}")


@app.command()
def sheet(
    photo: Annotated[Path, typer.Argument(help="The photo to show in every built-in style.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The sheet to write (JPEG, PNG...).")],
    size: Annotated[int, typer.Option(help="Long side of each picture on the sheet, in pixels.")] = 512,
    columns: Annotated[int, typer.Option(help="Pictures per row.", min=1)] = 4,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing file.")] = False,
) -> None:
    """The photo in every built-in style, side by side on one labelled sheet.

    Example: fast-nst sheet photo.jpg -o sheet.jpg
    """
    from .files import open_image, resize_long_side
    from .runtime import Stylizer, save_output
    from .styles import builtin_styles, contact_sheet

    if out.exists() and not overwrite:
        raise UserError(f"{out}: already exists (use --overwrite to replace it)")
    if size < 16:
        raise UserError(f"--size must be at least 16 pixels (got {size})")
    image = resize_long_side(open_image(photo), size)
    found = builtin_styles()
    if not found:
        raise UserError("no built-in styles are installed")
    stylized = {name: Stylizer.load(name)(image) for name in found}
    save_output(contact_sheet(image, stylized, columns), out)
    err.print(f"{out}: {len(stylized)} styles", soft_wrap=True)
