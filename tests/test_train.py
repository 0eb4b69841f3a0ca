"""The trainer on real photos, a real painting and the real VGG19: it learns, resumes exactly, and
fails cleanly."""

import dataclasses
import io
import itertools
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from conftest import ASSETS, assert_one_line_error, run_cli, shared_path
from rich.console import Console

from fast_nst.errors import UserError
from fast_nst.files import torch_save
from fast_nst.train import LR_FINAL, TrainConfig, config_for_resume, load_checkpoint, lr_at, train
from fast_nst.transformer import ResidualBlock, load_model


def tiny(tmp_path, photos, **kw) -> TrainConfig:
    base = dict(
        style=str(ASSETS / "mosaic.jpg"),
        data=str(photos),
        out=str(tmp_path / "m.pt"),
        run_dir=str(tmp_path / "run"),
        steps=6,
        batch_size=2,
        image_size=64,
        width=8,
        style_size=128,
        workers=0,
        log_every=1,
        preview_count=2,
        preview_every=3,
        checkpoint_every=100,
    )
    return TrainConfig(**(base | kw))


def quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


def _interrupt_after(log: Path, lines: int) -> threading.Thread:
    """Ctrl-C to this process once the run's log has `lines` lines, as a user presses it mid-run."""

    def watch() -> None:
        deadline = time.time() + 60
        while time.time() < deadline:
            if log.exists() and len(log.read_text().splitlines()) >= lines:
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.002)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("on_device", [False, True], ids=["loader", "data-on-device"])
def test_an_interrupted_run_resumes_exactly(tmp_path, photos, on_device):
    """Stopped by Ctrl-C anywhere, then resumed: the same weights as a run never stopped, with the
    default schedule (warm-up, cosine decay) and either data path."""
    straight = tiny(tmp_path / "a", photos, steps=8, warmup=0.25, data_on_device=on_device)
    train(straight, console=quiet())
    stopped = dataclasses.replace(
        straight, out=str(tmp_path / "b" / "m.pt"), run_dir=str(tmp_path / "b" / "run")
    )
    watcher = _interrupt_after(tmp_path / "b" / "run" / "log.jsonl", 2)
    with pytest.raises(KeyboardInterrupt):
        train(stopped, console=quiet())
    watcher.join()
    ckpt = tmp_path / "b" / "run" / "checkpoint.pt"
    assert 2 <= load_checkpoint(ckpt)["step"] < 8
    train(stopped, resume=ckpt, console=quiet())
    a, _ = load_model(tmp_path / "a" / "m.pt")
    b, _ = load_model(tmp_path / "b" / "m.pt")
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name


def test_the_schedule_warms_up_then_decays_and_scales_with_the_batch():
    cfg = TrainConfig(style="s", data="d", lr=1e-3, warmup=0.1)
    rates = [lr_at(step, 100, cfg) for step in range(100)]
    assert rates[0] == pytest.approx(1e-4) and rates[9] == pytest.approx(1e-3)  # 10 warm-up steps
    assert max(rates) == pytest.approx(1e-3) and rates[-1] == pytest.approx(LR_FINAL * 1e-3)
    assert all(a >= b for a, b in itertools.pairwise(rates[9:]))  # decays monotonically after
    big = dataclasses.replace(cfg, batch_size=16)
    assert lr_at(50, 100, big) == pytest.approx(2 * lr_at(50, 100, cfg))  # sqrt(16 / 4)
    flat = dataclasses.replace(cfg, lr_schedule="constant", warmup=0)
    assert {lr_at(s, 100, flat) for s in range(100)} == {1e-3}
    # Raising --steps on resume: the curve is stretched, the run continues on it at its step.
    assert lr_at(99, 200, cfg) > lr_at(99, 100, cfg)


def test_raising_steps_on_resume_continues_the_run(tmp_path, photos):
    """Data, RNG and optimizer state carry over exactly; with a constant schedule, 3 + 3 steps
    are exactly a 6-step run."""
    straight = tiny(tmp_path / "a", photos, lr_schedule="constant", warmup=0)
    train(straight, console=quiet())

    half = tiny(tmp_path / "b", photos, steps=3, lr_schedule="constant", warmup=0)
    train(half, console=quiet())
    ckpt = tmp_path / "b" / "run" / "checkpoint.pt"
    assert load_checkpoint(ckpt)["step"] == 3
    train(dataclasses.replace(half, steps=6), resume=ckpt, console=quiet())

    a, _ = load_model(tmp_path / "a" / "m.pt")
    b, _ = load_model(tmp_path / "b" / "m.pt")
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    log = [json.loads(line) for line in (tmp_path / "b" / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4, 5, 6]


def test_a_checkpoint_of_an_older_version_resumes_as_it_ran(tmp_path, photos):
    """Settings added since (the schedule, --style-loss, which replaced --balance-layers) and one
    whose default changed meaning (--style-size) take the values the old run trained with."""
    train(tiny(tmp_path, photos, steps=2), console=quiet())
    ckpt = tmp_path / "run" / "checkpoint.pt"
    record = load_checkpoint(ckpt)
    for name in ("lr_schedule", "warmup", "style_loss"):
        del record["config"][name]
    record["config"]["balance_layers"] = True
    record["config"]["style_size"] = None  # then: the painting as it is; now: twice the crop
    torch_save(record, ckpt)
    cfg = config_for_resume(ckpt, steps=4)
    assert (cfg.lr_schedule, cfg.warmup, cfg.style_loss, cfg.steps) == ("constant", 0.0, "balanced", 4)
    assert cfg.painting_size is None
    with pytest.raises(UserError, match="--width cannot change"):  # the weights were made with it
        config_for_resume(ckpt, width=16)
    with pytest.raises(UserError, match="already at step 2; --steps cannot be fewer"):
        config_for_resume(ckpt, steps=1)  # it would record 1 step for a model trained 2


def test_run_files_and_model_metadata(tmp_path, photos):
    out = train(tiny(tmp_path, photos), console=quiet())
    record = torch.load(out, weights_only=True)
    assert record["meta"]["style"] == "mosaic" and record["meta"]["steps"] == 6
    assert record["meta"]["config"]["image_size"] == 64
    # The last checkpoint is the same network, usable as a model (to try a run while it trains).
    final, _ = load_model(out)
    from_checkpoint, ckpt_record = load_model(tmp_path / "run" / "checkpoint.pt")
    assert ckpt_record["meta"]["style"] == "mosaic" and ckpt_record["meta"]["steps"] == 6
    x = torch.rand(1, 3, 40, 40)
    assert torch.equal(final(x), from_checkpoint(x))
    run = tmp_path / "run"
    assert sorted(p.name for p in run.glob("preview_*.png")) == ["preview_0000003.png", "preview_0000006.png"]
    assert not list(tmp_path.rglob("*.tmp"))
    # Written through a private temporary file, but left as an ordinary file (umask applies).
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_unreadable_photos_are_skipped_and_counted(tmp_path, photos):
    data = (ASSETS / "dog.jpg").read_bytes()
    (photos / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (photos / "text.png").write_text("not an image")
    console = quiet()
    train(tiny(tmp_path, photos, steps=8, batch_size=4, preview_count=0), console=console)
    text = console.file.getvalue()
    assert "truncated.jpg" in text and "text.png" in text
    assert "2 unreadable image(s) skipped" in text


@pytest.mark.slow
def test_learns_the_style_on_real_photos(tmp_path):
    """~30 steps at 128 px on the shared photos: the style loss falls clearly."""
    cfg = TrainConfig(
        style=str(shared_path("styles/mosaic.jpg")),
        data=str(shared_path("photos/train")),
        out=str(tmp_path / "m.pt"),
        run_dir=str(tmp_path / "run"),
        steps=30,
        image_size=128,
        log_every=1,
        preview_every=30,
    )
    train(cfg, console=quiet())
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    first, last = log[0]["style"], sum(r["style"] for r in log[-5:]) / 5
    assert last < 0.6 * first, (first, last)
    net, _ = load_model(tmp_path / "m.pt")
    assert net(torch.rand(1, 3, 40, 56)).shape == (1, 3, 40, 56)


def test_cli_errors_are_one_line(tmp_path, photos):
    assert_one_line_error(
        run_cli("train", "--style", str(tmp_path / "nope.jpg"), "--data", str(photos)),
        "nope.jpg",
        "not found",
    )
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    assert_one_line_error(
        run_cli("train", "--style", str(bad), "--data", str(photos), "--out", str(tmp_path / "m.pt")),
        "bad.jpg",
        "cannot read image",
    )
    assert_one_line_error(
        run_cli("train", "--style", str(ASSETS / "mosaic.jpg"), "--data", str(photos), "--batch-size", "0"),
        "--batch-size",
    )
    assert_one_line_error(
        run_cli("train", "--style", str(ASSETS / "mosaic.jpg"), "--data", str(tmp_path / "x")), "not a folder"
    )
    assert not (tmp_path / "m.pt").exists()


def _small_files_only():
    # A file-size limit makes writes fail with EFBIG, as a full disk fails them with ENOSPC.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))


def small_run_args(tmp_path, photos, steps: int) -> list[str]:
    """CLI arguments for a tiny real training run in tmp_path."""
    return ["train", "--style", str(ASSETS / "mosaic.jpg"), "--data", str(photos),
            "--out", str(tmp_path / "m.pt"), "--run-dir", str(tmp_path / "run"), "--steps", str(steps),
            "--image-size", "64", "--width", "16", "--workers", "0", "--log-every", "1"]  # fmt: skip


def test_full_disk_while_saving_leaves_no_partial_file(tmp_path, photos):
    args = small_run_args(tmp_path, photos, steps=2)
    result = run_cli(*args, preexec_fn=_small_files_only)
    assert_one_line_error(result, "checkpoint.pt", "cannot write")
    assert not (tmp_path / "m.pt").exists()
    assert not list(tmp_path.rglob("*.tmp")) and not (tmp_path / "run" / "checkpoint.pt").exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_saves_a_checkpoint_that_resumes(tmp_path, photos, sig):
    """SIGTERM is how schedulers and cloud machines preempt: it stops the run as Ctrl-C does."""
    args = small_run_args(tmp_path, photos, steps=100_000)
    proc = subprocess.Popen([sys.executable, "-m", "fast_nst", *args], stderr=subprocess.PIPE, text=True)
    log = tmp_path / "run" / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 2):
        time.sleep(0.2)
    os.kill(proc.pid, sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "saving a checkpoint" in stderr and "--resume" in stderr and "Traceback" not in stderr
    step = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"]
    assert step >= 2
    ckpt = str(tmp_path / "run" / "checkpoint.pt")
    fixed = run_cli("train", "--resume", ckpt, "--width", "32")
    assert_one_line_error(fixed, "checkpoint.pt", "--width cannot change")
    done = run_cli("train", "--resume", ckpt, "--steps", str(step + 2), "--content-weight", "0.5")
    assert done.returncode == 0, done.stderr
    assert "content_weight 1.0 -> 0.5" in done.stderr
    meta = load_model(tmp_path / "m.pt")[1]["meta"]
    assert meta["steps"] == step + 2 and meta["config"]["content_weight"] == 0.5


def test_init_fine_tunes_from_a_trained_style(tmp_path, photos):
    """--init starts from the shipped mosaic_light weights: its very first step already paints
    mosaic (a fraction of the loss of random weights), and a width mismatch is a one-line error
    before the loss network is built and the style layers balanced (it came after them)."""
    first_loss = {}
    for init in (None, "mosaic_light"):
        cfg = tiny(tmp_path / str(init), photos, steps=1, width=16, image_size=128, style_size=256, init=init)
        train(cfg, console=quiet())
        first_loss[init] = json.loads((tmp_path / str(init) / "run" / "log.jsonl").read_text())["loss"]
    assert first_loss["mosaic_light"] < 0.5 * first_loss[None], first_loss
    wrong_width = run_cli(*small_run_args(tmp_path, photos, 1), "--init", "mosaic")
    assert_one_line_error(wrong_width, "mosaic", "width")
    assert "style layers balanced" not in wrong_width.stderr
    fewer_blocks = run_cli(*small_run_args(tmp_path, photos, 1), "--width", "16", "--residual-blocks", "4",
                           "--init", "mosaic_light")  # fmt: skip
    assert_one_line_error(fewer_blocks, "mosaic_light", "5 residual blocks", "with 4")


def test_residual_blocks_set_the_networks_depth_in_the_model_and_its_checkpoint(tmp_path, photos):
    train(tiny(tmp_path, photos, steps=2, residual_blocks=2, checkpoint_every=2), console=quiet())
    for path in (tmp_path / "m.pt", tmp_path / "run" / "checkpoint.pt"):
        net, _ = load_model(path)
        assert net.n_residual == 2 and sum(isinstance(m, ResidualBlock) for m in net.body) == 2
