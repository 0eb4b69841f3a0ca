"""The inference runtime: sizes, orientation, alpha, colour, strength, tiling, folders and errors."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from conftest import assert_one_line_error, run_cli, shared_path
from helpers_runtime import make_clip, make_model
from PIL import Image

from fast_nst import runtime
from fast_nst.backends import _cuda_gpu_count, ort_providers
from fast_nst.errors import UserError
from fast_nst.export import cached_onnx
from fast_nst.files import open_image, pil_to_tensor
from fast_nst.runtime import Stylizer
from fast_nst.styles import builtin_style
from fast_nst.tiling import _spans


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return make_model(tmp_path_factory.mktemp("model") / "seeded.pt")


@pytest.fixture(scope="module")
def stylizer(model_file):
    return Stylizer.load(model_file, device="cpu", backend="torch")


@pytest.mark.parametrize(("w", "h"), [(101, 67), (33, 130), (64, 64)])
def test_any_size_comes_back_the_same_size(stylizer, photo, w, h):
    img = open_image(photo).resize((w, h))
    assert stylizer(img).size == (w, h)
    batch = np.stack([np.asarray(img)] * 2)
    assert stylizer(batch).shape == batch.shape and stylizer(batch).dtype == np.uint8
    assert stylizer(torch.rand(2, 3, h, w)).shape == (2, 3, h, w)


def test_exif_rotated_jpeg_keeps_its_orientation(stylizer, photo, tmp_path):
    src = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: "rotate 90 degrees clockwise to display"
    Image.open(photo).save(src, exif=exif)
    runtime.stylize_image_file(stylizer, src, tmp_path / "out.jpg")
    assert Image.open(photo).size == (384, 256)
    assert Image.open(tmp_path / "out.jpg").size == (256, 384)


def test_rgba_png_keeps_its_alpha(stylizer, photo, tmp_path):
    img = open_image(photo).resize((97, 61)).convert("RGBA")
    alpha = Image.linear_gradient("L").resize(img.size)
    img.putalpha(alpha)
    img.save(tmp_path / "in.png")
    runtime.stylize_image_file(stylizer, tmp_path / "in.png", tmp_path / "out.webp")
    runtime.stylize_image_file(stylizer, tmp_path / "in.png", tmp_path / "out.png")
    out = Image.open(tmp_path / "out.png")
    assert out.mode == "RGBA" and out.size == img.size
    assert np.array_equal(np.asarray(out.getchannel("A")), np.asarray(alpha))
    assert Image.open(tmp_path / "out.webp").mode == "RGBA"


def test_preserve_color_keeps_the_input_chroma(model_file, photo):
    img = open_image(photo)
    chroma = np.asarray(img.convert("YCbCr"), dtype=np.float32)[..., 1:]
    plain = Stylizer.load(model_file)(img)
    kept = Stylizer.load(model_file, preserve_color=True)(img)
    kept_error = np.abs(np.asarray(kept.convert("YCbCr"), dtype=np.float32)[..., 1:] - chroma).mean()
    plain_error = np.abs(np.asarray(plain.convert("YCbCr"), dtype=np.float32)[..., 1:] - chroma).mean()
    assert kept_error < 1.5 < plain_error  # within rounding of 8-bit RGB, far from the stylised colours
    assert np.abs(np.asarray(kept.convert("L"), float) - np.asarray(plain.convert("L"), float)).mean() < 2


def test_strength_zero_returns_the_input_and_one_half_blends(model_file, photo):
    img = open_image(photo)
    assert np.array_equal(np.asarray(Stylizer.load(model_file, strength=0)(img)), np.asarray(img))
    full = np.asarray(Stylizer.load(model_file)(img), float)
    half = np.asarray(Stylizer.load(model_file, strength=0.5)(img), float)
    assert np.abs(half - (full + np.asarray(img, float)) / 2).max() <= 1
    with pytest.raises(UserError, match="strength"):
        Stylizer.load(model_file, strength=1.5)


def test_tiled_matches_untiled_with_no_seam(stylizer, model_file, photo):
    """384x256 photo in 160 px tiles: close to the one-piece result, and no line at tile edges."""
    x = pil_to_tensor(open_image(photo))
    whole = stylizer(x)
    tiled = Stylizer.load(model_file, backend="torch", tile=160, overlap=64)(x)
    diff = (tiled - whole).abs().mean(1)[0]
    assert diff.mean() < 0.003  # 0.0019: tiles start on the network's stride-4 grid (off it: 0.02)
    w = x.shape[-1]
    spans = _spans(w, 160, 64)
    edges = [s for s, _ in spans[1:]] + [s + n - 1 for s, n in spans[:-1]]  # where a tile begins/ends
    assert diff[:, edges].mean() <= 1.2 * diff.mean()

    def jump(t):  # horizontal step between neighbouring columns, at the tile edges
        return (t[..., 1:] - t[..., :-1]).abs().mean((0, 1, 2))[edges]

    assert (jump(tiled) <= 1.1 * jump(whole) + 1e-3).all()


def test_big_images_are_tiled_automatically(model_file, photo, monkeypatch):
    calls = []
    original = runtime.stylize_tiled

    def spy(run, x, tile, overlap):
        calls.append(tile)
        return original(run, x, tile, overlap)

    monkeypatch.setattr(runtime, "MAX_UNTILED_PIXELS", 200 * 200)
    monkeypatch.setattr(runtime, "DEFAULT_TILE", 192)
    monkeypatch.setattr(runtime, "stylize_tiled", spy)
    x = pil_to_tensor(open_image(photo))  # 384 x 256: over the patched limit
    assert Stylizer.load(model_file)(x).shape == x.shape
    assert calls == [192]
    assert Stylizer.load(model_file)(x[..., :150, :200]).shape == (1, 3, 150, 200) and calls == [192]


def test_onnx_without_our_metadata_is_still_usable(model_file, tmp_path, photo):
    from fast_nst.export import export_onnx

    ours = export_onnx(model_file, tmp_path / "m.onnx").path
    proto = onnx.load(ours)
    del proto.metadata_props[:]
    onnx.save(proto, tmp_path / "foreign.onnx")
    foreign = Stylizer.load(tmp_path / "foreign.onnx")
    assert foreign.info == {} and foreign.style == "stylized"
    img = open_image(photo).resize((99, 67))
    a = np.asarray(foreign(img), float)
    b = np.asarray(Stylizer.load(model_file)(img), float)
    assert np.abs(a - b).max() <= 1
    assert Stylizer.load(ours).style == "seeded"


def test_onnx_with_other_io_is_refused(tmp_path):
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3]) for n in "ab"]
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["c"])],
        "add",
        inputs,
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, 3])],
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
        tmp_path / "add.onnx",
    )
    with pytest.raises(UserError, match="not an image-to-image model"):
        Stylizer.load(tmp_path / "add.onnx")


def _fixed(proto: onnx.ModelProto, dims: dict[int, int]) -> onnx.ModelProto:
    """The model with input dimensions fixed, as some runtimes want them."""
    for axis, value in dims.items():
        proto.graph.input[0].type.tensor_type.shape.dim[axis].dim_value = value
    return proto


def test_onnx_with_a_fixed_batch_or_size_runs_or_says_why(model_file, tmp_path, photo):
    """A batch fixed at 1 runs any number of images; a fixed 64x64 runs 64x64 images and names
    the size for any other (it used to crash with a traceback), and a video's file (it named
    neither, and told to resize the image)."""
    from fast_nst.export import export_onnx

    proto = onnx.load(export_onnx(model_file, tmp_path / "m.onnx").path)
    onnx.save(_fixed(proto, {0: 1}), tmp_path / "batch1.onnx")
    onnx.save(_fixed(proto, {2: 64, 3: 64}), tmp_path / "64.onnx")
    frames = np.stack([np.asarray(open_image(photo).resize((64, 64)))] * 3)
    frames[1] = 255 - frames[1]
    expected = Stylizer.load(model_file)(frames)
    assert (
        np.abs(Stylizer.load(tmp_path / "batch1.onnx", batch_size=4)(frames).astype(int) - expected).max()
        <= 1
    )
    assert np.abs(Stylizer.load(tmp_path / "64.onnx")(frames).astype(int) - expected).max() <= 1
    result = run_cli("stylize", str(tmp_path / "64.onnx"), str(photo), "-o", str(tmp_path / "o.png"))
    assert_one_line_error(result, "chicago.jpg: the model takes 64x64 only", "not 384x256")
    clip = make_clip(tmp_path / "clip.mp4", "mp4", "aac", frames=4)  # 96x64
    result = run_cli("stylize", str(tmp_path / "64.onnx"), str(clip), "-o", str(tmp_path / "o.mp4"))
    assert_one_line_error(result, "clip.mp4: the model takes 64x64 only", "not 96x64", "without --size")
    assert not (tmp_path / "o.mp4").exists()


def test_onnx_with_a_grey_or_bigger_output_is_refused(tmp_path, photo):
    """One output channel, or an upscaler's bigger image (found only when it runs): one line."""
    from onnx import TensorProto, helper

    def save(name: str, node: onnx.NodeProto, weight: onnx.TensorProto, out: list) -> None:
        graph = helper.make_graph(
            [node],
            name,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)],
            [weight],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
        onnx.save(model, tmp_path / name)

    grey = helper.make_tensor("w", TensorProto.FLOAT, [1, 3, 1, 1], [0.3, 0.6, 0.1])
    save("grey.onnx", helper.make_node("Conv", ["x", "w"], ["y"]), grey, ["N", 1, "H", "W"])
    scales = helper.make_tensor("s", TensorProto.FLOAT, [4], [1, 1, 2, 2])
    save("x2.onnx", helper.make_node("Resize", ["x", "", "s"], ["y"]), scales, ["N", 3, "H2", "W2"])
    out = str(tmp_path / "o.png")
    result = run_cli("stylize", str(tmp_path / "grey.onnx"), str(photo), "-o", out)
    assert_one_line_error(result, "grey.onnx: not an image-to-image model", "y ('N', 1, 'H', 'W')")
    result = run_cli("stylize", str(tmp_path / "x2.onnx"), str(photo), "-o", out)
    assert_one_line_error(
        result, "chicago.jpg: the model made a (1, 3, 512, 768) output from a (1, 3, 256, 384)"
    )
    assert not (tmp_path / "o.png").exists()


def test_model_errors_are_one_line(tmp_path):
    (tmp_path / "m.txt").write_text("hello")
    torch.save({"model": torch.zeros(3)}, tmp_path / "other_tool.pt")
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    for name, message in [
        ("m.txt", "unknown model format"),
        ("missing.pt", "no such model file"),
        ("other_tool.pt", "not a fast-nst model"),
        ("junk.onnx", "ONNX Runtime cannot load it"),
    ]:
        with pytest.raises(UserError, match=message) as e:
            Stylizer.load(tmp_path / name)
        assert "\n" not in str(e.value) and name in str(e.value)


def test_unusable_gpu_providers_are_never_asked_for():
    if _cuda_gpu_count() > 0:
        pytest.skip("this machine has a GPU")
    assert ort_providers("auto", fp16=False) == ["CPUExecutionProvider"]
    with pytest.raises(UserError, match="--device cuda"):
        ort_providers("cuda", fp16=False)


def test_folder_with_a_corrupt_file(model_file, photo, tmp_path):
    src = tmp_path / "photos"
    (src / "sub").mkdir(parents=True)
    Image.open(photo).resize((64, 48)).save(src / "a.jpg")
    Image.open(photo).resize((50, 70)).save(src / "sub" / "b.png")
    (src / "sub" / "broken.jpg").write_bytes(Image.open(photo).tobytes()[:500])
    result = run_cli("stylize", str(model_file), str(src), "-o", str(tmp_path / "out"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (tmp_path / "out" / "a.jpg").is_file() and (tmp_path / "out" / "sub" / "b.png").is_file()
    assert not (tmp_path / "out" / "sub" / "broken.jpg").exists()
    summary = result.stderr[result.stderr.index("1 failed") :]
    assert "broken.jpg: cannot read image" in summary
    again = run_cli("stylize", str(model_file), str(src), "-o", str(tmp_path / "out"))
    assert_one_line_error(again, "already exist", "--overwrite")
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_cli_single_image_errors_are_one_line(model_file, tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not really")
    assert_one_line_error(
        run_cli("stylize", str(model_file), str(tmp_path / "bad.jpg")), "bad.jpg: cannot read image"
    )
    assert_one_line_error(
        run_cli("stylize", str(model_file), str(tmp_path / "none.jpg")), "none.jpg: no such file"
    )


def test_stylize_path_is_the_commands_job_from_python(stylizer, photo, tmp_path):
    """An image is written beside its source, named after the style; never over an existing one."""
    src = tmp_path / "p.jpg"
    src.write_bytes(photo.read_bytes())
    out = runtime.stylize_path(stylizer, src)
    assert out == tmp_path / f"p_{stylizer.style}.jpg" and open_image(out).size == open_image(src).size
    with pytest.raises(UserError, match="already exists"):
        runtime.stylize_path(stylizer, src)


def test_every_command_reads_a_device_the_same_way(model_file):
    """`stylize` takes what `train` takes (cuda:N, mps), with the same one-line errors."""
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    for device in ("cuda:1", "mps", "tpu"):
        with pytest.raises(UserError, match=f"--device {device}"):
            Stylizer.load(model_file, device=device, backend="torch")


def _edge_contrast(y: torch.Tensor, tile: int, overlap: int) -> float:
    """How much more neighbouring pixels differ at tile edges than anywhere in the image (1: no seam)."""
    ratios = []
    for dim in (-1, -2):
        steps = y.diff(dim=dim).abs().mean([d for d in range(4) if d != y.ndim + dim])
        spans = _spans(y.shape[dim], tile, overlap)
        edges = sorted({s - 1 for s, _ in spans[1:]} | {s + n - 1 for s, n in spans[:-1]})
        ratios.append((steps[edges].mean() / steps.mean()).item())
    return max(ratios)


def test_the_default_cpu_path_tiles_a_shipped_style_without_seams_or_tone_blocks():
    """ONNX Runtime, the CPU default, normalises each tile by its own statistics: a bare .onnx
    file's tiles come out in their own tones (blocks; the overlap only keeps them from meeting in
    a line). A model from a .pt runs its tiles in PyTorch with the whole image's statistics, so
    the default path's tiles match the untiled image."""
    x = pil_to_tensor(open_image(shared_path("photos/test/tubingen.jpg")))  # 1024x768: 4x3 tiles
    whole = Stylizer.load("mosaic")(x)
    default = Stylizer.load("mosaic", tile=256)
    assert default.backend.name == "onnxruntime"
    tiled = default(x)
    assert (tiled - whole).abs().mean() < 0.002 and _edge_contrast(tiled, 256, 128) < 1.25

    bare = Stylizer.load(cached_onnx(builtin_style("mosaic").pt), tile=256)(x)
    assert (bare - whole).abs().mean() > 0.03  # tones of their own
    assert _edge_contrast(bare, 256, 128) < 1.25  # but no line where tiles meet
    seamed = Stylizer.load(cached_onnx(builtin_style("mosaic").pt), tile=256, overlap=0)(x)
    assert _edge_contrast(seamed, 256, 0) > 1.5  # what the measure sees without an overlap
