"""The `fast-nst` command line: one sub-command per job, every option documented in --help."""

from __future__ import annotations

import dataclasses
import inspect
import signal
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from . import __version__
from .config import CRF, DATA, LOSS, OPTIM, OUTPUT, SPEED, TEMPORAL, OptimizeConfig, TrainConfig
from .errors import UserError, failures_listed

err = Console(stderr=True, highlight=False)


class _App(typer.Typer):
    """A Typer app that shows a `UserError` as one line and exit code 1, never a traceback."""

    def __call__(self, *args: object, **kwargs: object) -> object:
        return _run(super().__call__, *args, **kwargs)

    def script(self, command: str, prog_name: str) -> None:
        """One command as a script of its own (`python train.py ...`): its usage line reads
        `train.py [OPTIONS]`, not `train.py train [OPTIONS]`."""
        _run(typer.main.get_command(self).commands[command], sys.argv[1:], prog_name=prog_name)


def _run(command: Callable[..., object], *args: object, **kwargs: object) -> object:
    # SIGTERM (a scheduler, `kill`) ends a command the way Ctrl-C does: temporary files are
    # removed and a training run saves its checkpoint, instead of dying where it stands.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return command(*args, **kwargs)
    except UserError as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}", soft_wrap=True)  # paths may hold [brackets]
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


def config_options(config: type) -> list[inspect.Parameter]:
    """The options of a config's fields that declare help text (config.setting), in order.

    A field without a default becomes an option defaulting to None, so that a command can take it
    from elsewhere (train's --style comes from the checkpoint under --resume) or say what is missing.
    """
    hints = typing.get_type_hints(config)
    params = []
    for f in dataclasses.fields(config):
        m = f.metadata
        if "help" not in m:
            continue
        option = typer.Option(
            *m["flags"], help=m["help"], rich_help_panel=m["panel"], show_default=m["show_default"]
        )
        required = f.default is dataclasses.MISSING
        annotation = Annotated[hints[f.name] | None if required else hints[f.name], option]
        default = None if required else f.default
        params.append(
            inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
        )
    return params


def with_config_options(config: type):
    """Give a command taking **settings the options of `config`'s fields, after its own."""

    def decorate(command):
        own = [
            p
            for p in inspect.signature(command, eval_str=True).parameters.values()
            if p.kind != p.VAR_KEYWORD
        ]
        params = sorted([*own, *config_options(config)], key=_panel_order)
        # Typer passes every parameter by name; keyword-only lets the sort put them in any order.
        command.__signature__ = inspect.Signature([p.replace(kind=p.KEYWORD_ONLY) for p in params])
        return command

    return decorate


PANELS = (DATA, OPTIM, LOSS, SPEED, OUTPUT)  # the order --help shows them in


def _panel_order(param: inspect.Parameter) -> int:
    """Arguments (no panel) first, then the panels in PANELS order; a stable sort keeps the rest."""
    info = typing.get_args(param.annotation)[1:] if typing.get_origin(param.annotation) is Annotated else ()
    panel = next((getattr(i, "rich_help_panel", None) for i in info), None)
    return PANELS.index(panel) + 1 if panel in PANELS else 0


def _given_on_command_line(ctx: typer.Context) -> list[str]:
    # Typer ships its own copy of click, so its ParameterSource enum is compared by name.
    return [
        name for name in ctx.params if getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"
    ]


@app.command()
@with_config_options(TrainConfig)
def train(
    ctx: typer.Context,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Continue a run from its checkpoint (runs/<name>/checkpoint.pt) with its settings; "
            "--steps/--epochs, --data, --out, --device, --workers, the loss weights, --lr and the "
            "logging options may change (e.g. a lower --content-weight for a stronger style). From an "
            "older copy of a checkpoint, add --run-dir NEW_FOLDER: a branch never replaces the run's "
            "newer checkpoint.",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            help="Replace a model file at --out that this run did not write.", rich_help_panel=OUTPUT
        ),
    ] = False,
    **settings: Any,
) -> None:
    """Train a style network from one painting on a folder of photos.

    Example: fast-nst train --style starry_night.jpg --data train2014/ --steps 40000

    Shows a progress bar; writes preview grids, log.jsonl and checkpoints to the run folder.
    Ctrl-C saves a checkpoint; continue with --resume runs/<name>/checkpoint.pt.
    """
    from .train import config_for_resume
    from .train import train as run_training

    if resume is not None:
        cfg = config_for_resume(
            resume, **{k: settings[k] for k in _given_on_command_line(ctx) if k in settings}
        )
    else:
        if settings["style"] is None or settings["data"] is None:
            raise UserError("train needs --style PAINTING and --data PHOTO_FOLDER (or --resume CHECKPOINT)")
        if not Path(settings["style"]).is_file():
            raise UserError(f"{settings['style']}: style image not found")
        cfg = TrainConfig(**settings)
    try:
        run_training(cfg, resume=resume, console=err, overwrite=overwrite)
    except KeyboardInterrupt:
        sys.exit(130)


@app.command()
@with_config_options(OptimizeConfig)
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
            help="Image to write (.png, .jpg, .webp).",
            rich_help_panel=OUTPUT,
        ),
    ],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing file.", rich_help_panel=OUTPUT)
    ] = False,
    size: Annotated[
        int | None,
        typer.Option(help="Long side of the result in pixels.", show_default="512", rich_help_panel=DATA),
    ] = None,
    scales: Annotated[
        str | None,
        typer.Option(
            help="Coarse-to-fine long sides, e.g. 256,512,1024: each scale starts from the previous "
            "result, upsampled (for 1024 px and more). The last is the result's long side (--size, if given, "
            "must be it).",
            rich_help_panel=DATA,
        ),
    ] = None,
    style_blend: Annotated[
        str | None,
        typer.Option(
            help="One weight per style image, e.g. 0.7,0.3.", show_default="equal", rich_help_panel=LOSS
        ),
    ] = None,
    **settings: Any,
) -> None:
    """Stylise one photo by optimising its pixels (Gatys et al.): slow, the best quality.

    Example: fast-nst optimize photo.jpg painting.jpg -o out.png --size 1024 --scales 256,512,1024
    """
    from .config import parse_blend, parse_scales
    from .optimize import optimize as run_optimize

    cfg = OptimizeConfig(
        content=str(content),
        styles=[str(s) for s in styles],
        out=str(out),
        blend=parse_blend(style_blend),
        scales=parse_scales(scales, size),
        **settings,
    )
    try:
        run_optimize(cfg, console=err, overwrite=overwrite)
    except KeyboardInterrupt:
        sys.exit(130)
    err.print(f"wrote {out}", markup=False)


@app.command()
def evaluate(
    outputs: Annotated[
        list[Path] | None, typer.Argument(help="Stylised images to measure.", show_default=False)
    ] = None,
    content: Annotated[
        Path | None,
        typer.Option(
            help="The photo the outputs were made from; or a folder of photos, each output matched to "
            "the photo its name starts with (chicago.jpg for chicago_mosaic.png).",
            show_default=False,
        ),
    ] = None,
    style: Annotated[
        Path | None, typer.Option(help="The painting (with --video: for the style gap of sampled frames).")
    ] = None,
    video: Annotated[
        tuple[Path, Path] | None,
        typer.Option(
            metavar="ORIGINAL STYLIZED",
            help="Measure a stylised video's flicker instead: its temporal error against the original "
            "(1: as steady as the film; per-frame stylisation is several times that).",
            show_default=False,
        ),
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option(
            help="Images: loss, the unweighted style loss per layer and content loss; gap, style_gap "
            "(0 = the painting's statistics, 1 = no closer than the photo) and content_err. "
            "--video reports the gap's figures.",
            show_default="loss",
        ),
    ] = None,
    size: Annotated[int, typer.Option(help="Long side everything is resized to before measuring.")] = 512,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
) -> None:
    """Measure outputs against the photo and painting (caffe VGG19, standard layers), or a video's flicker.

    Example: fast-nst evaluate --content photo.jpg --style painting.jpg out1.png out2.png --metric gap

    Example: fast-nst evaluate --video clip.mp4 clip_mosaic.mp4 --style mosaic.jpg
    """
    import json

    from .device import pick_device
    from .evaluate import evaluate_files, evaluate_video, report_table, video_table

    if video is not None:
        if outputs or content or metric:
            raise UserError("--video measures two videos; give no images, --content or --metric with it")
        report = evaluate_video(*video, style, size, pick_device(device))
    else:
        if content is None or style is None:
            raise UserError("give --content (the photo) and --style (the painting), or --video")
        report = evaluate_files(outputs or [], content, style, metric or "loss", size, pick_device(device))
    if json_out:
        print(json.dumps(report, indent=2))
    else:
        # Piped output keeps every column rather than rich's default 80-column cut.
        table = video_table(report) if video is not None else report_table(report)
        Console(width=None if sys.stdout.isatty() else 160).print(table)
    if failed := report.get("failed"):
        total = len(failed) + len(report["results"])
        raise failures_listed(err, failed, f"{len(failed)} of {total} outputs not measured")


STYLIZE_IMAGE, STYLIZE_RUN = "Image", "Runtime"


@app.command()
def stylize(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="[MODEL] SOURCE: a model file (.pt from `fast-nst train`, or .onnx), then an image, "
            "a video, or a folder (its images and videos, recursive). Leave out MODEL when using --style.",
            metavar="[MODEL] SOURCE",
            show_default=False,
        ),
    ],
    style: Annotated[
        str | None,
        typer.Option(
            "--style",
            "-s",
            help="A built-in style by name (list them: fast-nst styles), or a model file, instead of MODEL.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Output file (format from its extension) or folder; an existing folder, for one image or "
            "video, receives <input>_<style> in it.",
            show_default="<input>_<style> (a video: .mp4 unless its own container holds H.264)",
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
        typer.Option(
            help="Shrink images (not videos) to this long side first (pixels).", rich_help_panel=STYLIZE_IMAGE
        ),
    ] = None,
    scale: Annotated[
        float | None,
        typer.Option(help="Resize images (not videos) by this factor first.", rich_help_panel=STYLIZE_IMAGE),
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
        int | None,
        typer.Option(
            help="Pixels shared by neighbouring tiles, at most half a tile.",
            show_default="128, or half a smaller tile",
            rich_help_panel=STYLIZE_IMAGE,
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")] = False,
    device: Annotated[
        str,
        typer.Option(
            help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps; ONNX Runtime runs on auto, cpu or cuda.",
            rich_help_panel=STYLIZE_RUN,
        ),
    ] = "auto",
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
    temporal: Annotated[
        float | None,
        typer.Option(
            help="Videos: against flicker, blend each frame with the previous output, moved along the "
            "film's optical flow where it is reliable; 0 stylises each frame alone (about 15% faster), "
            "higher (below 1) is steadier.",
            show_default=f"{TEMPORAL:g}",
        ),
    ] = None,
    crf: Annotated[
        int | None,
        typer.Option(
            help="Videos: H.264 quality, 0 (lossless; few players play it) to 51. Lower keeps more of "
            "the fine strokes and of --temporal's steadiness, in larger files (12: about twice the size).",
            show_default=f"{CRF}",
        ),
    ] = None,
) -> None:
    """Stylise an image, a video (sound kept) or a folder of them.

    Examples: fast-nst stylize photo.jpg --style mosaic -o out.jpg;
    fast-nst stylize models/mosaic.onnx photos/ -o stylized/
    """
    from .runtime import Stylizer, stylize_path

    if len(paths) != (1 if style else 2):
        usage = "fast-nst stylize MODEL SOURCE, or fast-nst stylize SOURCE --style NAME"
        raise UserError(f"expected {'one path' if style else 'a model and a source'} ({usage})")
    model, source = (style, paths[0]) if style else (paths[0], paths[1])
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
    try:
        stylize_path(stylizer, source, out, max_size, scale, overwrite, frames, err, temporal, crf)
    except KeyboardInterrupt:
        err.print("\nstopped: finished outputs are kept, the one in progress was removed")
        sys.exit(130)


OrtWebOption = Annotated[
    Path | None,
    typer.Option(
        "--ort-web",
        help="ONNX Runtime Web's files, for a machine without internet: an onnxruntime-web folder "
        "(or its dist/), or the .tgz that `npm pack onnxruntime-web` writes.",
        show_default="fetched once from npm into the cache",
    ),
]


@app.command()
def export(
    models: Annotated[
        list[str] | None,
        typer.Argument(
            help="Model file from `fast-nst train` (.pt) or a built-in style's name. With --web: the "
            "styles to offer (built-in names, .pt or .onnx files).",
            show_default="with --web: every built-in style",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="ONNX file to write.", show_default="<model>.onnx; a built-in: ./<name>.onnx"
        ),
    ] = None,
    fp16: Annotated[
        bool, typer.Option("--fp16", help="Half-precision weights inside (input/output stay float32).")
    ] = False,
    size: Annotated[
        str | None,
        typer.Option(
            help="Fix the image size, WIDTHxHEIGHT (e.g. 1920x1080), for runtimes and converters that "
            "want static shapes: every shape in the graph becomes a constant.",
            show_default="any size",
        ),
    ] = None,
    batch: Annotated[
        int | None,
        typer.Option(help="Fix the batch size (with --size: a fully static graph).", show_default="any"),
    ] = None,
    web: Annotated[
        Path | None,
        typer.Option(
            help="Write the browser app instead: a self-contained static folder (page, ONNX Runtime "
            "Web, the styles) that any static web host serves.",
            show_default=False,
        ),
    ] = None,
    ort_web: OrtWebOption = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Replace an existing file, or with --web an app folder it wrote (never another folder).",
        ),
    ] = False,
) -> None:
    """Export to ONNX (opset 18, any batch and image size) and check it against PyTorch.

    Prints the graph's operators and how far ONNX Runtime is from PyTorch.

    Example: fast-nst export models/mosaic.pt -o models/mosaic.onnx

    Example: fast-nst export mosaic_fast --size 1280x720    (a built-in style, fixed shape)

    Example: fast-nst export --web site/    (the browser app with every built-in style)
    """
    from .export import export_onnx

    if web is not None:
        from .web import build_site

        site = build_site(web, models or (), ort_web, overwrite)
        styles = ", ".join(site.styles)
        print(f"{site.path}: the browser app, {site.size_bytes / 1e6:.0f} MB, styles: {styles}")
        print(f"try it: python -m http.server --directory {site.path} 8000, then open http://localhost:8000/")
        return
    if not models or len(models) > 1:
        raise UserError("export takes one model file (several only with --web)")
    from .styles import resolve_model

    model = resolve_model(models[0])
    default = model.with_suffix(".onnx") if model == Path(models[0]) else Path(f"{models[0]}.onnx")
    fixed = _parse_size(size) if size is not None else None
    report = export_onnx(model, out or default, fp16, overwrite, fixed, batch)
    diffs = ", ".join(f"{size}: {d:.2e}" for size, d in report.max_abs_diff.items())
    operators = ", ".join(f"{op} {n}" for op, n in report.operators.items())
    print(f"{report.path}: written; max |onnxruntime - torch| {diffs} (limit {report.tolerance:g})")
    print(f"operators: {operators}")


@app.command()
def web(
    styles: Annotated[
        list[str] | None,
        typer.Argument(
            help="Styles to offer: built-in names, .pt or .onnx files.", show_default="every built-in style"
        ),
    ] = None,
    port: Annotated[int, typer.Option(help="Port to serve on (0: any free one).", min=0, max=65535)] = 8000,
    host: Annotated[
        str, typer.Option(help="Address to listen on; 0.0.0.0 lets other machines on the network in.")
    ] = "127.0.0.1",
    ort_web: OrtWebOption = None,
) -> None:
    """Serve the browser app locally: pick a style, drop an image or use the camera, download the result.

    Everything runs in the browser (ONNX Runtime Web); no image is sent anywhere. To put the app
    on a web host instead, write it as a folder with `fast-nst export --web DIR`.

    Example: fast-nst web mosaic candy runs/my_style.pt --port 8080
    """
    import tempfile

    from .web import build_site, server

    with tempfile.TemporaryDirectory(prefix="fast-nst-web-") as folder:
        site = build_site(Path(folder) / "app", styles or (), ort_web)
        httpd = server(site.path, host, port)
        shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
        print(f"serving the app ({', '.join(site.styles)}) at http://{shown}:{httpd.server_address[1]}/")
        print("Ctrl-C to stop")
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            httpd.server_close()


def _parse_size(text: str) -> tuple[int, int]:
    """'1920x1080' -> (height, width) = (1080, 1920)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--size {text}: expected WIDTHxHEIGHT, e.g. 1920x1080") from None
    return height, width


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
    from .files import open_image, refuse_to_replace, resize_long_side
    from .runtime import Stylizer, save_output
    from .styles import builtin_styles, contact_sheet

    refuse_to_replace(out, overwrite)
    if size < 16:
        raise UserError(f"--size must be at least 16 pixels (got {size})")
    image = resize_long_side(open_image(photo), size)
    found = builtin_styles()
    if not found:
        raise UserError("no built-in styles are installed")
    stylized = {name: Stylizer.load(name)(image) for name in found}
    save_output(contact_sheet(image, stylized, columns), out)
    err.print(f"{out}: {len(stylized)} styles", soft_wrap=True)
