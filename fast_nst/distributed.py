"""Training on several processes under torchrun: DistributedDataParallel, NCCL on CUDA, gloo on CPU.

`torchrun --nproc-per-node N -m fast_nst train ...` starts N copies of the trainer; each learns
its rank from the environment torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK). `--batch-size` stays
the batch of one step, split evenly over the ranks, so a run is the same run at any world size:
the same crops per step, the same learning rate, and a checkpoint resumes at another size.
"""

from __future__ import annotations

import datetime
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .device import pick_device
from .errors import UserError

STOP_CHECK_EVERY = 10  # steps


@dataclass(frozen=True)
class World:
    rank: int
    size: int
    device: torch.device

    @property
    def main(self) -> bool:
        """The one process that writes: logs, previews, checkpoints, the model."""
        return self.rank == 0

    def agree(self, flag: bool) -> bool:
        """True on every rank when it is on any: a refusal seen by one process stops all of them
        (a rank that stopped alone would leave the others waiting)."""
        if self.size == 1:
            return flag
        t = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def stop_after(self, step: int, requested: bool) -> bool:
        """Whether to stop after `step`, the same answer on every rank: a Ctrl-C seen by any.

        Several processes compare notes every STOP_CHECK_EVERY steps only: each time is a host
        sync, which at every step would stall a GPU's queue of work."""
        if self.size == 1:
            return requested
        return step % STOP_CHECK_EVERY == 0 and self.agree(requested)

    def batch_mean(self, t: torch.Tensor) -> torch.Tensor:
        """A batch mean of this process's share, made the whole batch's, gradient included.

        What is not a plain mean over images (the gap style loss: a geometric mean over layers
        of their batch means) must see the whole batch's means, or a split batch trains another
        objective (44/255 apart after 3 steps). The gradient of the all-reduce is all-reduced in
        turn, which DistributedDataParallel's averaging of the weights' gradients then cancels
        out, leaving exactly the whole batch's gradient.
        """
        return _AllReduceSum.apply(t) / self.size if self.size > 1 else t

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        """The average of `t` over the ranks (the logged losses: of the whole batch, not a share)."""
        if self.size > 1:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
            t /= self.size
        return t


class _AllReduceSum(torch.autograd.Function):
    """The sum over all processes, whose gradient is the sum of theirs."""

    @staticmethod
    def forward(ctx: object, t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        dist.all_reduce(t)
        return t

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def join(device_name: str, batch_size: int) -> World:
    """This process's place in a torchrun job (a world of one when not under torchrun), and its device.

    On CUDA each rank takes the GPU of its LOCAL_RANK; --device cuda:N makes no sense there.
    """
    size, device = int(os.environ.get("WORLD_SIZE", "1")), pick_device(device_name)
    if size == 1:
        return World(0, 1, device)
    if batch_size % size:
        raise UserError(f"--batch-size {batch_size} does not split evenly over {size} processes")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise UserError(f"--device {device_name}: torchrun training runs on CUDA GPUs or CPUs")
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=10))
    return World(dist.get_rank(), size, device)


def torchrun_command(processes: int) -> list[str]:
    """`python -m fast_nst` in `processes` processes on this machine (for benchmarks and tests)."""
    run = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes)]
    return [*run, "-m", "fast_nst"]


def peer_failed(world: World, e: BaseException) -> bool:
    """Whether `e` is this process finding another one of the job gone (killed, crashed): gloo
    reports a closed connection as a plain RuntimeError, NCCL as a DistError."""
    text = str(e)
    return world.size > 1 and (isinstance(e, dist.DistError) or "gloo" in text or "NCCL" in text)


def leave(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()
