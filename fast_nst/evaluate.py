"""How close a stylised image is to the painting's style and the photo's content, as numbers.

Two metrics, both on the caffe VGG19 with the standard layers (style relu1_1..relu5_1, content
relu4_2), everything resized to a fixed long side (512 px) so figures are comparable between
settings, models and implementations whatever size each wrote its images at:

- "loss": the unweighted loss terms of losses.py per layer: ||G(out) - G(style)||^2 / ||G(style)||^2
  per style layer and ||F(out) - F(content)||^2 / ||F(content)||^2 at relu4_2. Lower is closer.
- "gap": issue 6's quality figures. style_gap = geometric mean over the style layers of
  ||G(out) - G(style)|| / ||G(content) - G(style)||, so 0 is the painting's statistics and 1 is no
  closer than the photo itself; the photo is the yardstick, which makes it comparable across
  paintings. content_err is the relative content error above.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image
from rich.table import Table
from torch import Tensor

from .config import CONTENT_LAYERS, STYLE_LAYERS
from .errors import UserError
from .files import open_image, pil_to_tensor, resize_long_side, rgb, tensor_to_pil
from .losses import gram_matrix, relative_sq_error
from .vgg import VGG19Encoder

EVAL_SIZE = 512
# Long side, px: VGG19's first layers hold 64 channels at full size, several GB past this.
MAX_EVAL_SIZE = 2048
METRICS = ("loss", "gap")
ImageLike = Image.Image | Tensor | str | Path
Features = dict[str, Tensor]


def standard_encoder(device: torch.device | str = "cpu") -> VGG19Encoder:
    """The encoder every figure here is defined on: caffe VGG19 up to relu5_1."""
    return VGG19Encoder([*STYLE_LAYERS, *CONTENT_LAYERS], "caffe").to(device)


def _check_size(size: int) -> None:
    if not 32 <= size <= MAX_EVAL_SIZE:
        raise UserError(f"--size must be 32 to {MAX_EVAL_SIZE} (got {size})")


def _as_image(x: ImageLike) -> Image.Image:
    """Tensors go through 8-bit quantisation, so a tensor measures the same as its saved PNG."""
    if isinstance(x, Tensor):
        return tensor_to_pil(x)
    if isinstance(x, Image.Image):
        return rgb(x)
    return rgb(open_image(Path(x)))


def _match_content(output: Image.Image, content: Image.Image, name: str) -> Image.Image:
    """The output resized to the content's evaluation size (models may be a few pixels off)."""
    _same_shape(output.size, content.size, name, "the content image", "is it the output for this photo?")
    return output if output.size == content.size else output.resize(content.size, Image.Resampling.LANCZOS)


def _same_shape(size: tuple[int, int], reference: tuple[int, int], name: str, what: str, hint: str) -> None:
    """A `UserError` unless `size` has the aspect ratio of `what`'s `reference` size: an output of
    another shape is of another picture."""
    (w, h), (rw, rh) = size, reference
    if abs(math.log((w / h) / (rw / rh))) > 0.05:
        raise UserError(f"{name}: {w}x{h} does not have the shape of {what} ({rw}x{rh}); {hint}")


@torch.no_grad()
def encode(encoder: VGG19Encoder, image: Image.Image) -> Features:
    """Grams at the style layers, features at the content layer: all either metric needs, and
    small enough to cache per photo and painting."""
    device = next(encoder.parameters()).device
    feats = encoder(pil_to_tensor(image).to(device), [*STYLE_LAYERS, *CONTENT_LAYERS])
    return {n: gram_matrix(f) if n in STYLE_LAYERS else f.float() for n, f in feats.items()}


def loss_from_features(out: Features, content: Features, style: Features) -> dict:
    style_layers = {n: relative_sq_error(out[n], style[n]).item() for n in STYLE_LAYERS}
    content_layers = {n: relative_sq_error(out[n], content[n]).item() for n in CONTENT_LAYERS}
    return {
        "style": sum(style_layers.values()) / len(style_layers),
        "content": sum(content_layers.values()) / len(content_layers),
        "style_layers": style_layers,
        "content_layers": content_layers,
    }


def gap_from_features(out: Features, content: Features, style: Features) -> dict:
    ratios = {}
    for n in STYLE_LAYERS:
        photo_gap = torch.linalg.norm(content[n] - style[n]).item()
        if photo_gap == 0:
            raise UserError(
                "style_gap is undefined when the photo has the painting's statistics (same image?)"
            )
        ratios[n] = torch.linalg.norm(out[n] - style[n]).item() / photo_gap
    (layer,) = CONTENT_LAYERS
    return {
        "style_gap": math.exp(sum(math.log(max(r, 1e-12)) for r in ratios.values()) / len(ratios)),
        "content_err": relative_sq_error(out[layer], content[layer]).item(),
        "style_gap_layers": ratios,
    }


_METRIC_FUNCTIONS = {"loss": loss_from_features, "gap": gap_from_features}


def _features(
    output: ImageLike, content: ImageLike, style: ImageLike, encoder: VGG19Encoder, size: int
) -> tuple[Features, Features, Features]:
    content_img = resize_long_side(_as_image(content), size)
    output_img = _match_content(
        _as_image(output), content_img, str(output) if isinstance(output, str | Path) else "output"
    )
    style_img = resize_long_side(_as_image(style), size)
    return encode(encoder, output_img), encode(encoder, content_img), encode(encoder, style_img)


def gap_metrics(
    output: ImageLike, content: ImageLike, style: ImageLike, encoder: VGG19Encoder, size: int = EVAL_SIZE
) -> dict:
    """Issue 6's {style_gap, content_err, style_gap_layers} for one output of one photo.

    Images may be paths, PIL images or (1, 3, H, W) tensors in [0, 1]; `encoder` should be
    `standard_encoder()` for figures comparable with the published ones.
    """
    return gap_from_features(*_features(output, content, style, encoder, size))


def loss_metrics(
    output: ImageLike, content: ImageLike, style: ImageLike, encoder: VGG19Encoder, size: int = EVAL_SIZE
) -> dict:
    """Unweighted style and content loss of one output, overall and per layer."""
    return loss_from_features(*_features(output, content, style, encoder, size))


def content_for(output: Path, content: Path) -> Path:
    """The photo an output belongs to: `content` itself, or in a folder the file whose name the
    output's name starts with (chicago.jpg for chicago_mosaic.png), the longest such name."""
    if not content.is_dir():
        return content
    from .data import find_images

    matches = [p for p in find_images(content) if output.stem.startswith(p.stem)]
    if not matches:
        raise UserError(
            f"{output}: no photo in {content} that its name starts with (chicago.jpg for chicago_mosaic.png)"
        )
    return max(matches, key=lambda p: len(p.stem))


def evaluate_files(
    outputs: Sequence[Path],
    content: Path,
    style: Path,
    metric: str = "loss",
    size: int = EVAL_SIZE,
    device: torch.device | str = "cpu",
) -> dict:
    """Every output measured against its photo and the painting; with the mean of several outputs.
    Outputs that cannot be measured (unreadable, no matching photo) are listed under "failed"."""
    if metric not in METRICS:
        raise UserError(f"--metric {metric}: expected one of {', '.join(METRICS)}")
    _check_size(size)
    if not outputs:
        raise UserError("give at least one output image to evaluate")
    if not content.exists():
        raise UserError(f"{content}: no such file or folder")
    pairs, failed = [], []
    for out_path in map(Path, outputs):  # one bad output is listed, not the end of the others
        try:
            content_path = content_for(out_path, content)
            for path in (out_path, content_path):
                if not path.is_file():
                    raise UserError(f"{path}: no such file")
            pairs.append((out_path, content_path))
        except UserError as e:
            failed.append(str(e))
    if not pairs:  # found before VGG is loaded
        raise _nothing_measured(failed)
    style_img = resize_long_side(_as_image(style), size)
    encoder = standard_encoder(device)
    style_feats = encode(encoder, style_img)
    content_feats: dict[Path, tuple[Image.Image, Features]] = {}
    results = []
    for out_path, content_path in pairs:
        try:
            if content_path not in content_feats:
                img = resize_long_side(_as_image(content_path), size)
                content_feats[content_path] = (img, encode(encoder, img))
            content_img, c_feats = content_feats[content_path]
            out_feats = encode(encoder, _match_content(_as_image(out_path), content_img, str(out_path)))
        except UserError as e:
            failed.append(str(e))
            continue
        figures = _METRIC_FUNCTIONS[metric](out_feats, c_feats, style_feats)
        results.append({"output": str(out_path), "content_image": str(content_path), **figures})
    if not results:
        raise _nothing_measured(failed)
    report = {"metric": metric, "size": size, "style": str(style), "results": results, "mean": _mean(results)}
    return report | ({"failed": failed} if failed else {})


def _nothing_measured(failed: list[str]) -> UserError:
    return UserError(failed[0] if len(failed) == 1 else f"no output could be measured, e.g. {failed[0]}")


VIDEO_GAP_FRAMES = 8  # frames sampled, evenly through the video, for the style gap


# Grey levels: an original whose frames differ by less than this along the flow (a still shot of
# a clean render; Big Buck Bunny's first frames, black, 0.02) is no yardstick for the ratio.
STILL = 0.25


def evaluate_video(
    original: Path,
    stylised: Path,
    style: Path | None = None,
    size: int = EVAL_SIZE,
    device: torch.device | str = "cpu",
) -> dict:
    """Flicker of a stylised video against its original, and (given the painting) its style gap.

    temporal_error: the mean difference between each stylised frame and the previous stylised frame
    warped onto it by the original's optical flow (none where the original did not change), over
    pixels whose flow is reliable, divided by the same for the original frames. 1 means the
    stylised video changes from frame to frame no more than the film itself; per-frame stylisation
    is several times that, as strokes shimmer.
    Frame pairs across a cut (under half the pixels reliable) are left out; a shorter stylised
    video (a `stylize --frames N` preview) is compared with the original's first frames. The style
    gap and content error are `gap_metrics` on VIDEO_GAP_FRAMES frames, so stability is never
    bought by washing the style out. A `note` says when the original hardly moves (STILL).
    """
    import itertools

    import numpy as np

    from .temporal import MIN_RELIABLE, FlowEstimator, grey, warp_error
    from .video import VIDEO_EXTENSIONS, frame_count, is_video_path, read_frames, short_of_header

    _check_size(size)
    for path in (original, stylised):
        if not is_video_path(path):
            raise UserError(f"{path}: not a video ({', '.join(sorted(VIDEO_EXTENSIONS))})")
    if style is not None and not Path(style).is_file():
        raise UserError(f"{style}: no such file")
    announced = {path: frame_count(path) for path in (original, stylised)}
    # Sampled over the frames compared: a preview's, not the whole original's.
    counts = [n for n in announced.values() if n]
    stride = max(1, min(counts, default=25 * VIDEO_GAP_FRAMES) // VIDEO_GAP_FRAMES)
    flow = FlowEstimator()
    previous: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    errors: list[tuple[float, float]] = []
    sampled: list[tuple[Image.Image, Image.Image]] = []
    frames = 0
    # A preview (`stylize --frames N`) is compared with the start of the original.
    for o, s in itertools.zip_longest(read_frames(original), read_frames(stylised)):
        if s is None:
            if why := short_of_header(frames, announced[stylised]):
                raise UserError(f"{stylised}: damaged ({why})")
            break
        if o is None:
            if why := short_of_header(frames, announced[original]):
                raise UserError(f"{original}: damaged ({why})")
            raise UserError(f"{stylised}: more frames than {original} ({frames}); is it its stylised copy?")
        if frames == 0:
            _same_shape(
                s.shape[1::-1],
                o.shape[1::-1],
                str(stylised),
                f"{original}'s frames",
                "is it stylised from it?",
            )
        o_img = resize_long_side(Image.fromarray(o), size)
        s_img = _match_content(Image.fromarray(s), o_img, str(stylised))
        o, s = np.asarray(o_img), np.asarray(s_img)
        g = grey(o)
        if previous is not None:
            motion = flow.motion(previous[0], g)
            if motion.reliable.mean() >= MIN_RELIABLE:
                errors.append((warp_error(s, previous[2], motion), warp_error(o, previous[1], motion)))
        if frames % stride == 0 and len(sampled) < VIDEO_GAP_FRAMES:
            sampled.append((s_img, o_img))
        previous = (g, o, s)
        frames += 1
    if frames < 2:
        raise UserError(
            f"{stylised}: {'one frame' if frames else 'no frame'}; flicker is measured between two or more"
        )
    if not errors:
        raise UserError(
            f"{original}: no two consecutive frames whose motion can be followed (cuts or fast motion)"
        )
    stylised_error = sum(e[0] for e in errors) / len(errors)
    original_error = sum(e[1] for e in errors) / len(errors)
    report = {
        "original": str(original),
        "stylised": str(stylised),
        "size": size,
        "frames": frames,
        "pairs": len(errors),
        "temporal_error": stylised_error / max(original_error, 1e-6),
        "stylised_warp_error": stylised_error,
        "original_warp_error": original_error,
    }
    if original_error < STILL:
        report["note"] = (
            f"the original hardly changes from frame to frame ({original_error:.2f} levels), so "
            "temporal_error, a ratio to that, is unreliable: compare the stylised frames' warp error"
        )
    if style is not None:
        encoder = standard_encoder(device)
        style_feats = encode(encoder, resize_long_side(_as_image(style), size))
        gaps = [gap_from_features(encode(encoder, s), encode(encoder, o), style_feats) for s, o in sampled]
        report |= {"style": str(style), "gap_frames": len(gaps), **_mean(gaps)}
    return report


def _mean(results: list[dict]) -> dict:
    """Field-wise mean of the numbers (also inside the per-layer dicts) over all results."""
    first = results[0]
    mean: dict = {}
    for key, value in first.items():
        if isinstance(value, float):
            mean[key] = sum(r[key] for r in results) / len(results)
        elif isinstance(value, dict):
            mean[key] = {n: sum(r[key][n] for r in results) / len(results) for n in value}
    return mean


def report_table(report: dict) -> Table:
    """One row per output (and a mean row for several): the summary figures, then each layer's."""
    summary = ("style_gap", "content_err") if report["metric"] == "gap" else ("style", "content")
    layers = "style_gap_layers" if report["metric"] == "gap" else "style_layers"
    table = Table(title=f"{report['metric']} at {report['size']} px against {report['style']}")
    table.add_column("output", overflow="fold", min_width=12)
    for name in (*summary, *STYLE_LAYERS):
        table.add_column(name, justify="right", no_wrap=True)
    rows = [(Path(r["output"]).name, r) for r in report["results"]]
    if len(rows) > 1:
        rows.append(("mean", report["mean"]))
    for name, r in rows:
        table.add_row(name, *(f"{r[k]:.4f}" for k in summary), *(f"{r[layers][n]:.4f}" for n in STYLE_LAYERS))
    return table


def video_table(report: dict) -> Table:
    """evaluate_video's figures, one per row."""
    table = Table(title=f"{report['stylised']} against {report['original']} at {report['size']} px")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("temporal_error (1 = as steady as the original)", f"{report['temporal_error']:.3f}")
    table.add_row("stylised frames' warp error (levels)", f"{report['stylised_warp_error']:.2f}")
    table.add_row("original frames' warp error (levels)", f"{report['original_warp_error']:.2f}")
    table.add_row("frame pairs measured / frames", f"{report['pairs']} / {report['frames']}")
    table.caption = report.get("note")
    if "style_gap" in report:
        table.add_row(f"style_gap ({report['gap_frames']} frames)", f"{report['style_gap']:.4f}")
        table.add_row(f"content_err ({report['gap_frames']} frames)", f"{report['content_err']:.4f}")
    return table
