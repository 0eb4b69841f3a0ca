"""Inputs a hostile but fair user gives: each gets a correct result or one clear line, never a
silent wrong image or a traceback. (More cases: test_runtime, test_train, test_video.)"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import ASSETS, assert_one_line_error, run_cli, shared_path
from helpers_runtime import make_clip
from PIL import Image
from rich.console import Console

from fast_nst.config import FilterSettings
from fast_nst.data import DeviceCrops
from fast_nst.errors import UserError
from fast_nst.export import cached_onnx
from fast_nst.files import load_image_tensor, rgb, torch_load, torch_save
from fast_nst.runtime import Stylizer, stylize_path
from fast_nst.styles import builtin_style
from fast_nst.train import TrainConfig, load_checkpoint, train
from fast_nst.transformer import load_model
from fast_nst.video import stylize_video
from fast_nst.web import build_site


@pytest.fixture(scope="module")
def grey(photo) -> np.ndarray:
    return np.asarray(Image.open(photo).convert("L"))


@pytest.mark.parametrize(
    ("mode", "scale"), [("I;16", 257), ("I", 257), ("I", 1), ("F", 1 / 255), ("F", 1)], ids=str
)
def test_wide_grey_modes_are_scaled_not_clipped(grey, mode, scale):
    """16-bit, 32-bit and float grey: Pillow's convert("RGB") clips them at 255 (a white image)."""
    values = grey.astype(np.float64) * scale
    img = Image.fromarray(values.astype(np.uint16)) if mode == "I;16" else Image.fromarray(values.astype(
        np.int32 if mode == "I" else np.float32), mode)  # fmt: skip
    assert img.mode == mode
    assert np.abs(np.asarray(rgb(img))[..., 0].astype(int) - grey).max() <= 1


def test_a_16_bit_png_is_stylised_like_its_8_bit_copy(grey, tmp_path):
    """The reported case: a photo as 16-bit grey PNG came out flat grey with exit code 0."""
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "g16.png")
    Image.fromarray(grey).save(tmp_path / "g8.png")
    for name in ("g16", "g8"):
        result = run_cli("stylize", str(tmp_path / f"{name}.png"), "--style", "mosaic_light",
                         "-o", str(tmp_path / f"{name}_out.png"))  # fmt: skip
        assert result.returncode == 0, result.stderr
    out16, out8 = (np.asarray(Image.open(tmp_path / f"{n}_out.png"), float) for n in ("g16", "g8"))
    assert out16.std() > 30 and np.abs(out16 - out8).max() <= 2
    # The same decoding feeds training: a 16-bit photo is cropped as its 8-bit copy is.
    crops = DeviceCrops([tmp_path / "g16.png", tmp_path / "g8.png"], 64, torch.device("cpu"),
                        Console(file=io.StringIO())).crops([(0, 5), (1, 5)])  # fmt: skip
    assert (crops[0].float() - crops[1].float()).abs().max() <= 1
    painting = load_image_tensor(tmp_path / "g16.png")
    assert painting.std() > 0.1


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_images_too_small_for_the_network_are_one_error_and_skipped_in_folders(photo, tmp_path, backend):
    stylizer = Stylizer.load("mosaic_light", device="cpu", backend=backend)
    assert stylizer(Image.open(photo).resize((5, 9))).size == (5, 9)  # the smallest that works
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.open(photo).resize((4, 40)).save(folder / "a_sliver.png")
    Image.open(photo).resize((64, 48)).save(folder / "b_photo.jpg")
    result = run_cli("stylize", str(folder), "--style", "mosaic_light", "--backend", backend,
                     "-o", str(tmp_path / "out"))  # fmt: skip
    assert (tmp_path / "out" / "b_photo.jpg").is_file() and not (tmp_path / "out" / "a_sliver.png").exists()
    assert_one_line_error(result, "1 of 2 files failed")
    assert "a_sliver.png: a 4x40 image is too small to stylise" in result.stderr
    single = run_cli("stylize", str(folder / "a_sliver.png"), "--style", "mosaic_light",
                     "-o", str(tmp_path / "x.png"))  # fmt: skip
    assert_one_line_error(single, "a_sliver.png: a 4x40 image is too small", "at least 5 pixels")


def test_a_damaged_onnx_cache_file_is_made_anew(photo):
    """The ONNX file a .pt is exported to on a CPU lives in a cache; damaged, it is rebuilt,
    not an error on every later run until the user finds and deletes it."""
    first = Stylizer.load("mosaic_light", device="cpu")
    cached = cached_onnx(builtin_style("mosaic_light").pt)  # the file it loaded
    whole = cached.read_bytes()
    cached.write_bytes(whole[: len(whole) // 3])
    again = Stylizer.load("mosaic_light", device="cpu")
    assert cached.read_bytes() == whole
    x = load_image_tensor(photo)
    assert torch.equal(again(x), first(x))


@pytest.mark.parametrize(
    "content",
    [b"\x00\x01 random bytes" * 300, "jpeg", b"hello, a text file\n"],
    ids=["random-bytes", "a-jpeg", "text"],
)
def test_a_file_that_is_not_a_model_is_not_called_an_attack(photo, tmp_path, content):
    """Nor given torch's reason, which for a text file was "101" (a KeyError)."""
    bad = tmp_path / "style.pt"
    bad.write_bytes(photo.read_bytes() if content == "jpeg" else content)
    result = run_cli("stylize", str(bad), str(photo), "-o", str(tmp_path / "out.jpg"))
    assert_one_line_error(result, "style.pt: not a PyTorch model file (not a file torch.save writes)")
    assert "refused" not in result.stderr
    train = run_cli("train", "--resume", str(bad))
    assert_one_line_error(train, "style.pt: not a checkpoint")


def test_sigterm_during_a_video_leaves_no_temporary_file(tmp_path):
    """`kill` (SIGTERM) mid-video ends it as Ctrl-C does: the half-written output, kept under a
    hidden temporary name until done, is removed, and a last line says so, not a traceback."""
    src = shared_path("video/chaplin.mp4")
    out = tmp_path / "out" / "chaplin_mosaic.mp4"
    cmd = [sys.executable, "-m", "fast_nst", "stylize", str(src), "--style", "mosaic_light", "-o", str(out)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not list(out.parent.glob(".*.tmp")):
        time.sleep(0.05)
    assert list(out.parent.glob(".*.tmp")), "the video never started"
    time.sleep(1)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines()[-1].startswith("stopped: "), stderr  # it ended with no word
    assert not out.exists() and not list(out.parent.iterdir())


def test_a_temporary_file_orphaned_by_kill_9_is_removed_by_the_next_run(tmp_path):
    """`kill -9` cannot be caught: the hidden temporary output stays. It names its machine and
    process; the next write of that output removes it, as its process is gone."""
    src = shared_path("video/chaplin.mp4")
    out = tmp_path / "chaplin_mosaic.mp4"
    cmd = [sys.executable, "-m", "fast_nst", "stylize", str(src), "--style", "mosaic_light", "-o", str(out)]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".*.tmp")):
        time.sleep(0.05)
    time.sleep(1)
    proc.kill()
    proc.wait(timeout=60)
    orphans = list(tmp_path.glob(".*.tmp"))
    assert len(orphans) == 1 and orphans[0].stat().st_size > 0
    result = run_cli("stylize", str(src), "--style", "mosaic_light", "-o", str(out), "--frames", "2")
    assert result.returncode == 0, result.stderr
    assert sorted(tmp_path.iterdir()) == [out]


def test_a_training_folder_of_only_broken_images_is_one_line(painting, tmp_path):
    """Found before any loader worker starts (those turned it into a 16-line dump), and before
    the run folder is made."""
    data = tmp_path / "photos"
    data.mkdir()
    for i in range(6):
        (data / f"broken{i}.jpg").write_bytes(b"\xff\xd8\xff not a photo")
    result = run_cli("train", "--style", str(painting), "--data", str(data), "--steps", "2",
                     "--out", str(tmp_path / "m.pt"), "--run-dir", str(tmp_path / "run"))  # fmt: skip
    assert_one_line_error(result, "photos: none of its 6 images could be read", "broken0.jpg")
    assert not (tmp_path / "run").exists()


def test_ctrl_c_to_the_process_group_is_announced_once(painting, photos, tmp_path):
    """A terminal's Ctrl-C reaches the loader workers too; only the trainer answers it."""
    cmd = [sys.executable, "-m", "fast_nst", "train", "--style", str(painting), "--data", str(photos),
           "--out", str(tmp_path / "m.pt"), "--run-dir", str(tmp_path / "run"), "--steps", "100000",
           "--image-size", "64", "--width", "8", "--workers", "2", "--log-every", "1"]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True)
    log = tmp_path / "run" / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 2):
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and stderr.count("saving a checkpoint") == 1, stderr


def test_an_output_folder_inside_the_input_is_not_stylised_again(photo, tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    for name in ("a.jpg", "b.jpg"):
        Image.open(photo).resize((64, 48)).save(src / name)
    for _ in range(2):
        result = run_cli(
            "stylize", str(src), "--style", "mosaic_light", "-o", str(src / "out"), "--overwrite"
        )
        assert result.returncode == 0, result.stderr
        assert "2 image(s) and 0 video(s) written" in result.stderr
    assert sorted(p.relative_to(src).as_posix() for p in src.rglob("*.jpg")) == [
        "a.jpg", "b.jpg", "out/a.jpg", "out/b.jpg"]  # fmt: skip


def test_an_animated_image_is_not_silently_its_first_frame(photo, tmp_path):
    frames = [Image.open(photo).resize((64, 48)), Image.open(photo).resize((64, 48)).rotate(180)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    result = run_cli(
        "stylize", str(tmp_path / "anim.gif"), "--style", "mosaic_light", "-o", str(tmp_path / "o.png")
    )
    assert_one_line_error(result, "anim.gif: an animated image (2 frames)")
    assert not (tmp_path / "o.png").exists()


def test_a_checkpoint_damaged_on_disk_is_refused_not_resumed(photos, tmp_path):
    """Bytes changed inside Adam's moments used to resume silently (moments off by 1e6)."""
    cfg = TrainConfig(style=str(ASSETS / "mosaic.jpg"), data=str(photos), out=str(tmp_path / "m.pt"),
                      run_dir=str(tmp_path / "run"), steps=2, batch_size=2, image_size=64, width=8,
                      style_size=128, workers=0, preview_count=0)  # fmt: skip
    train(cfg, console=Console(file=io.StringIO()))
    ckpt = tmp_path / "run" / "checkpoint.pt"
    assert load_checkpoint(ckpt)["step"] == 2  # intact: its checksum holds
    damaged = torch.load(ckpt, weights_only=True)
    damaged["optimizer"]["state"][0]["exp_avg"].view(-1)[:16] += 1e6  # the checksum is not updated
    torch.save(damaged, ckpt)
    assert_one_line_error(run_cli("train", "--resume", str(ckpt)), "checkpoint.pt: damaged")
    model = torch.load(tmp_path / "m.pt", weights_only=True)
    model["state_dict"]["body.0.1.weight"][0] += 1
    torch.save(model, tmp_path / "m.pt")
    with pytest.raises(UserError, match=r"m\.pt: damaged"):
        load_model(tmp_path / "m.pt")


def test_resuming_an_older_copy_of_a_checkpoint_replaces_nothing_newer(photos, tmp_path):
    """It used to overwrite the run's step-4 checkpoint with step 2's successors, append
    out-of-order log lines and replace the finished model; now it is refused, and --run-dir
    branches from the copy without touching the run."""
    cfg = TrainConfig(style=str(ASSETS / "mosaic.jpg"), data=str(photos), out=str(tmp_path / "m.pt"),
                      run_dir=str(tmp_path / "run"), steps=2, batch_size=2, image_size=64, width=8,
                      style_size=128, workers=0, preview_count=0, log_every=1)  # fmt: skip
    quiet = Console(file=io.StringIO())
    train(cfg, console=quiet)
    ckpt, log, model = tmp_path / "run" / "checkpoint.pt", tmp_path / "run" / "log.jsonl", tmp_path / "m.pt"
    older = tmp_path / "older.pt"
    older.write_bytes(ckpt.read_bytes())
    train(dataclasses.replace(cfg, steps=4), resume=ckpt, console=quiet)
    with log.open("a") as f:  # a kill -9 after step 4's checkpoint, during step 5
        f.write('{"step": 5, "loss": 1.0}\n{"step": 6, "lo')
    kept = {p: p.read_bytes() for p in (ckpt, model)}

    refused = run_cli("train", "--resume", str(older), "--steps", "6")
    assert_one_line_error(
        refused, "checkpoint.pt: this run is already at step 4, past the step 2", "--run-dir"
    )
    fresh = run_cli("train", "--style", cfg.style, "--data", cfg.data, "--run-dir", cfg.run_dir, "--out",
                    str(tmp_path / "other.pt"), "--image-size", "64")  # fmt: skip
    assert_one_line_error(fresh, "checkpoint.pt: holds another run (step 4)")
    branch = ["train", "--resume", str(older), "--steps", "3", "--run-dir", str(tmp_path / "branch")]
    assert_one_line_error(run_cli(*branch), "m.pt: already exists")  # the run's model, at step 4
    assert {p: p.read_bytes() for p in (ckpt, model)} == kept
    done = run_cli(*branch, "--out", str(tmp_path / "branch.pt"))
    assert done.returncode == 0, done.stderr
    assert load_checkpoint(tmp_path / "branch" / "checkpoint.pt")["step"] == 3
    assert {p: p.read_bytes() for p in (ckpt, model)} == kept

    # The run itself continues; the log drops the steps the kill lost, then has each step once.
    train(dataclasses.replace(cfg, steps=6), resume=ckpt, console=quiet)
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_a_6000x4000_photo_on_the_default_path_has_no_tile_seams_in_bounded_memory(photo, tmp_path):
    """Tiles run one at a time (they used to go four to a batch: 5.7 GB), share InstanceNorm
    statistics measured at full resolution (no tone blocks), and start on the stride grid.
    mosaic_light takes this path at half mosaic's time: it peaked at 1.45 GB (2026-12-02), and
    four of its 1024 px tiles at once would add 0.65 GB."""
    from test_runtime import _edge_contrast

    big = tmp_path / "big.jpg"
    Image.open(photo).resize((6000, 4000), Image.Resampling.LANCZOS).save(big, quality=92)
    out = tmp_path / "out.png"
    code = (  # the command, then its own peak memory (kB; ru_maxrss would start at pytest's)
        "import sys; from fast_nst.cli import app\n"
        "try: app(prog_name='fast-nst')\n"
        "finally: print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0], file=sys.stderr)"
    )
    args = ["stylize", str(big), "--style", "mosaic_light", "-o", str(out)]
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    peak_gb = int(result.stderr.split()[-1]) / 2**20
    assert peak_gb < 1.8, peak_gb
    y = load_image_tensor(out)
    assert _edge_contrast(y, 1024, 128) < 1.1


def test_an_output_that_names_an_input_is_refused_even_with_overwrite(photo, painting, tmp_path):
    """`-o` naming the input by mistake, with --overwrite for a rerun, replaced a user's video with
    its 2-frame preview and `optimize`'s photo with a 32 px result (an existing `-o` was replaced
    without --overwrite there too)."""
    stylizer = Stylizer.load("mosaic_light")
    clip = make_clip(tmp_path / "clip.mp4", "mp4", "aac", frames=3)
    original = clip.read_bytes()
    with pytest.raises(UserError, match=r"clip\.mp4: the output would replace the input"):
        stylize_path(stylizer, clip, clip, overwrite=True, frames=2)
    assert clip.read_bytes() == original
    mine = tmp_path / "mine.jpg"
    shutil.copy(photo, mine)
    result = run_cli("optimize", str(mine), str(painting), "-o", str(mine), "--overwrite", "--size", "32")
    assert_one_line_error(result, "mine.jpg: the output would replace the input")
    assert mine.read_bytes() == photo.read_bytes()
    other = tmp_path / "kept.png"
    other.write_bytes(b"a user's file")
    result = run_cli("optimize", str(mine), str(painting), "-o", str(other), "--size", "32")
    assert_one_line_error(result, "kept.png: already exists (use --overwrite")
    assert other.read_bytes() == b"a user's file"


def test_outputs_go_where_a_user_would_expect_or_are_one_line(photo, tmp_path):
    """An existing folder as `-o` for one image receives it (it was "already exists", then an
    unknown extension); the input folder as the output folder wrote nothing and said 0 written;
    a .webm's default output was a .webm, which H.264 output refuses; --max-size on a video and
    --frames or --temporal on an image were ignored."""
    stylizer = Stylizer.load("mosaic_light")
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(photo, folder / "a.jpg")
    (tmp_path / "outdir").mkdir()
    assert stylize_path(stylizer, folder / "a.jpg", tmp_path / "outdir", max_size=64).is_file()
    assert Image.open(tmp_path / "outdir" / "a_mosaic_light.jpg").size == (64, 43)
    with pytest.raises(UserError, match="the output folder is the input folder"):
        stylize_path(stylizer, folder, folder)
    with pytest.raises(UserError, match=r"out\.jpg: the output of a folder is a folder"):
        stylize_path(stylizer, folder, tmp_path / "out.jpg")  # it made a folder named out.jpg
    with pytest.raises(UserError, match=r"a\.jpg: --frames limits a video's frames"):
        stylize_path(stylizer, folder / "a.jpg", frames=2)
    with pytest.raises(UserError, match=r"photos: --temporal steadies a video's .*; this folder holds none"):
        stylize_path(stylizer, folder, tmp_path / "styled", temporal=0.5)
    (tmp_path / "a_file").write_text("a user's file")
    with pytest.raises(UserError, match="a_file: is a file; the output of a folder is a folder"):
        stylize_path(stylizer, folder, tmp_path / "a_file")
    clip = make_clip(tmp_path / "clip.webm", "matroska", "pcm_s16le", frames=2)
    with pytest.raises(UserError, match=r"clip\.webm: --max-size and --scale resize images; this is a video"):
        stylize_path(stylizer, clip, max_size=64)
    assert stylize_path(stylizer, clip) == tmp_path / "clip_mosaic_light.mp4"
    assert (tmp_path / "clip_mosaic_light.mp4").is_file()


def test_a_folder_s_videos_are_stylised_with_its_images_and_a_bad_one_is_listed(photo, tmp_path):
    """A folder's videos were passed over without a word (only its images were stylised): now
    each is written in the output folder's tree, a damaged one is skipped and listed at the end,
    and the video options apply to them."""
    stylizer = Stylizer.load("mosaic_light")
    folder = tmp_path / "mix"
    (folder / "sub").mkdir(parents=True)
    Image.open(photo).resize((64, 48)).save(folder / "a.jpg")
    make_clip(folder / "sub" / "clip.webm", "matroska", "pcm_s16le", frames=6)
    (folder / "junk.mp4").write_text("not a video")
    with pytest.raises(UserError, match="1 of 3 files failed"):
        stylize_path(stylizer, folder, tmp_path / "out", frames=4, temporal=0.5)
    assert (tmp_path / "out" / "a.jpg").is_file() and not (tmp_path / "out" / "junk.mp4").exists()
    with av.open(str(tmp_path / "out" / "sub" / "clip.mp4")) as written:  # a .webm's output: .mp4
        assert sum(1 for _ in written.decode(video=0)) == 4
    with pytest.raises(UserError, match=r"out\.mp4: the output of a folder is a folder"):
        stylize_path(stylizer, folder, tmp_path / "out.mp4")  # it made a folder named out.mp4
    make_clip(folder / "sub" / "clip.mp4", "mp4", "aac", frames=2)
    with pytest.raises(UserError, match=r"clip\.(mp4|webm) and .*clip\.(mp4|webm) would both be written to"):
        stylize_path(stylizer, folder, tmp_path / "out2")
    (folder / "sub" / "clip.mp4").unlink()
    (folder / "a.jpg").unlink()
    with pytest.raises(UserError, match="mix: --max-size and --scale resize images; this folder holds none"):
        stylize_path(stylizer, folder, tmp_path / "out3", max_size=64)


def test_the_current_folder_as_the_source_is_named_after_itself(photo, tmp_path, monkeypatch):
    """`fast-nst stylize .` was a traceback ("PosixPath('.') has an empty name")."""
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.open(photo).resize((64, 48)).save(folder / "a.jpg")
    monkeypatch.chdir(folder)
    assert stylize_path(Stylizer.load("mosaic_light"), Path(".")) == tmp_path / "photos_mosaic_light"
    assert (tmp_path / "photos_mosaic_light" / "a.jpg").is_file()


def test_a_file_where_the_output_s_folder_should_be_is_named(photo, tmp_path):
    """mkdir's reason was "File exists", which says nothing of the file in the way."""
    (tmp_path / "notes.txt").write_text("a user's file")
    out = tmp_path / "notes.txt" / "o.jpg"
    result = run_cli("stylize", str(photo), "--style", "mosaic_light", "-o", str(out))
    assert_one_line_error(result, "o.jpg: cannot write", "notes.txt is a file, not a folder")
    assert (tmp_path / "notes.txt").read_text() == "a user's file"


def test_an_overlap_over_half_the_tile_is_one_line_and_the_default_fits_a_small_tile(photo, tmp_path):
    """--overlap 200 with --tile 256 was quietly cut to 128; the default overlap (128) with a
    200 px tile is its half, as before, not an error the user did not ask for."""
    result = run_cli("stylize", "--style", "mosaic_light", str(photo), "--tile", "256", "--overlap", "200",
                     "-o", str(tmp_path / "a.jpg"))  # fmt: skip
    assert_one_line_error(result, "--overlap", "half the tile, 128", "got 200")
    assert not (tmp_path / "a.jpg").exists()
    ok = run_cli(
        "stylize", "--style", "mosaic_light", str(photo), "--tile", "200", "-o", str(tmp_path / "b.jpg")
    )
    assert ok.returncode == 0, ok.stderr
    assert Image.open(tmp_path / "b.jpg").size == Image.open(photo).size


def test_the_web_app_refuses_a_damaged_onnx_file_before_serving(tmp_path):
    (tmp_path / "junk.onnx").write_text("not a model")
    with pytest.raises(UserError, match=r"junk\.onnx: ONNX Runtime cannot load it"):
        build_site(tmp_path / "app", [str(tmp_path / "junk.onnx")])
    assert not (tmp_path / "app").exists()


def test_a_video_filter_setting_out_of_range_is_refused_and_a_bad_recorded_one_is_ignored(tmp_path):
    """`stylize_video`'s temporal strength and crf are one-line errors before anything is written,
    a filter setting out of range is refused where it is made. A model whose file records a setting
    that is no number in range (edited by hand, say) loads and runs with the plain filter's value
    for it, through PyTorch and through its ONNX export."""
    stylizer = Stylizer.load("mosaic_fast")
    clip, out = make_clip(tmp_path / "clip.mp4", "mp4", "aac", frames=2), tmp_path / "out.mp4"
    with pytest.raises(UserError, match=r"--temporal must be at least 0 and below 1 \(got 1\)"):
        stylize_video(stylizer, clip, out, temporal=1)
    with pytest.raises(UserError, match=r"--crf must be 0 \(lossless\) to 51 \(got 52\)"):
        stylize_video(stylizer, clip, out, crf=52)
    assert not out.exists()
    with pytest.raises(ValueError, match=r"fade_discount must be at least 0 \(got -1\)"):
        FilterSettings(fade_discount=-1)
    with pytest.raises(ValueError, match=r"contrast_restored must be 0 to 1 \(got 2\)"):
        FilterSettings(contrast_restored=2)
    for name, bad in (("fade_discount", "three"), ("fade_discount", -3), ("contrast_restored", 1.5)):
        record = torch_load(builtin_style("udnie").pt, "model file")
        record["meta"][name] = bad
        edited = tmp_path / f"edited_{name}_{bad}.pt"
        torch_save(record, edited)
        recorded = {"fade_discount": 3, name: getattr(FilterSettings(), name)}
        for backend in ("torch", "onnxruntime"):
            assert Stylizer.load(edited, backend=backend).filter_settings == FilterSettings(**recorded)
