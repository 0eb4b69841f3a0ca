"""Which device a command runs on (one picker for train, optimize, evaluate and stylize), and in
which precision."""

from __future__ import annotations

import torch

from .errors import UserError


def pick_device(name: str) -> torch.device:
    """auto: cuda > mps > cpu; an explicit device that is not there is an error, not a fallback."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name}: no CUDA GPU is usable by this PyTorch build")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserError("--device mps: Apple's Metal backend is not available here")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name}: unknown device (use auto, cpu, cuda, cuda:N or mps)") from None


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    if amp not in ("auto", "bf16", "fp16", "off"):
        raise UserError(f"--amp {amp}: expected auto, bf16, fp16 or off")
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if amp == "bf16" else torch.float16
