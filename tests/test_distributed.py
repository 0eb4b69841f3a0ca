"""torchrun: two processes with gloo on the CPU train what one process trains with the whole batch,
on real photos with the real VGG19, and a two-process checkpoint resumes in one process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from conftest import ASSETS, run_cli

from fast_nst.distributed import torchrun_command
from fast_nst.files import load_image_tensor
from fast_nst.train import load_checkpoint
from fast_nst.transformer import load_model

SETTINGS = ["--style", str(ASSETS / "mosaic.jpg"), "--batch-size", "4", "--image-size", "64", "--width", "8",
            "--style-size", "128", "--workers", "0", "--log-every", "1"]  # fmt: skip


TORCHRUN = torchrun_command(2)


def torchrun(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*TORCHRUN, *args], capture_output=True, text=True, timeout=300)


def _apart(a_path, b_path) -> float:
    """Mean difference between two models' images of a real photo, in 8-bit levels.

    Not the weights: summed in another order over two processes, a gradient differs in its last
    bits, and Adam's first steps are nearly its sign, so a weight whose gradient is almost zero
    (a convolution bias before an InstanceNorm has none at all but float noise) takes a full step
    either way. The images stay within a fraction of a level on average (0.43 at most here).
    """
    x = load_image_tensor(ASSETS / "chicago.jpg")
    (a, _), (b, _) = load_model(a_path), load_model(b_path)
    with torch.no_grad():
        return (a(x) - b(x)).abs().mean().item() * 255


def _log(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("data", ["--no-data-on-device", "--data-on-device"])
def test_two_processes_train_what_one_trains_with_the_whole_batch(tmp_path, photos, data):
    """--batch-size is the step's batch, split over the processes: the same crops, the same
    learning rate, and (with the default gap style loss, whose per-layer errors are averaged over
    the processes before they are combined) the same objective. With the photos decoded onto the
    device (the GPU default), each process holds all of them and crops its share of the step."""
    one = run_cli("train", *SETTINGS, data, "--data", str(photos), "--steps", "3",
                  "--out", str(tmp_path / "one.pt"), "--run-dir", str(tmp_path / "one"))  # fmt: skip
    assert one.returncode == 0, one.stderr
    two = torchrun("train", *SETTINGS, data, "--data", str(photos), "--steps", "3",
                   "--out", str(tmp_path / "two.pt"), "--run-dir", str(tmp_path / "two"))  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stderr.count("done: 3 steps") == 1  # the first process alone reports and writes
    assert _apart(tmp_path / "one.pt", tmp_path / "two.pt") < 1
    for a, b in zip(_log(tmp_path / "one"), _log(tmp_path / "two"), strict=True):
        assert a["step"] == b["step"] and abs(a["loss"] - b["loss"]) < 1e-4 * a["loss"]


def test_a_two_process_checkpoint_resumes_in_one_process(tmp_path, photos):
    flat = ["--lr-schedule", "constant", "--warmup", "0"]  # so 2 steps, then 1 more, are 3 steps
    one = run_cli("train", *SETTINGS, *flat, "--data", str(photos), "--steps", "3",
                  "--out", str(tmp_path / "one.pt"), "--run-dir", str(tmp_path / "one"))  # fmt: skip
    assert one.returncode == 0, one.stderr
    two = torchrun("train", *SETTINGS, *flat, "--data", str(photos), "--steps", "2",
                   "--out", str(tmp_path / "two.pt"), "--run-dir", str(tmp_path / "two"))  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    resumed = run_cli("train", "--resume", str(tmp_path / "two" / "checkpoint.pt"), "--steps", "3")
    assert resumed.returncode == 0, resumed.stderr
    assert _apart(tmp_path / "one.pt", tmp_path / "two.pt") < 1
    assert [r["step"] for r in _log(tmp_path / "two")] == [1, 2, 3]


def test_a_killed_process_ends_the_job_with_one_line_and_an_intact_checkpoint(tmp_path, photos):
    run_dir = tmp_path / "run"
    cmd = [*TORCHRUN, "train", *SETTINGS, "--data", str(photos), "--steps", "100000",
           "--checkpoint-every", "2", "--out", str(tmp_path / "m.pt"), "--run-dir", str(run_dir)]  # fmt: skip
    job = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    log = run_dir / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 5):
        time.sleep(0.1)
    second = [pid for pid in _children(job.pid) if b"\0RANK=1\0" in Path(f"/proc/{pid}/environ").read_bytes()]
    os.kill(second[0], signal.SIGKILL)
    _, stderr = job.communicate(timeout=120)
    assert job.returncode != 0
    assert "error: another process of this torchrun job stopped" in stderr and "--resume" in stderr, stderr[
        -3000:
    ]
    step = load_checkpoint(run_dir / "checkpoint.pt")["step"]  # loads: its checksum holds
    resumed = run_cli("train", "--resume", str(run_dir / "checkpoint.pt"), "--steps", str(step + 1))
    assert resumed.returncode == 0, resumed.stderr


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]
