"""Reading and writing the user's files without surprises.

Reads fail with a `UserError` naming the file; writes go to a temporary name in the same folder
and are renamed into place, so a crash, a full disk or Ctrl-C never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import io
import os
import pickle
import socket
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from .errors import UserError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})


def _reason(e: BaseException) -> str:
    return (getattr(e, "strerror", None) or str(e) or type(e).__name__).rstrip(".")


_UMASK = os.umask(0)
os.umask(_UMASK)


_HOST = socket.gethostname().replace(".", "_")


def _remove_orphans(path: Path) -> None:
    """Delete temporary files of `path` left by a process of this machine that no longer runs
    (`kill -9`, a power cut): nothing else would ever remove them, hidden as they are."""
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.{_HOST}-*.tmp"):
        pid = tmp.name[len(f".{path.name}.{_HOST}-") :].split(".")[0]
        if pid.isdigit() and not _running(int(pid)):
            tmp.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether it exists (PermissionError: it does, not ours)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the body succeeds.

    The temporary name carries this machine's name and process id, so a later write of the same
    file can tell an orphan (its process gone) from another live writer's file.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_orphans(path)
        prefix = f".{path.name}.{_HOST}-{os.getpid()}."
        fd, tmp_name = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as e:
        file_in_the_way = next((p for p in path.parents if p.is_file()), None)  # mkdir's "File exists"
        why = f"{file_in_the_way} is a file, not a folder" if file_in_the_way else _reason(e)
        raise UserError(f"{path}: cannot write ({why})") from None
    tmp = Path(tmp_name)
    try:
        yield tmp
        tmp.chmod(0o666 & ~_UMASK)  # mkstemp makes the file private (0600); outputs are ordinary files
        os.replace(tmp, path)
    except OSError as e:
        raise UserError(f"{path}: cannot write ({_reason(e)})") from None
    finally:
        tmp.unlink(missing_ok=True)


CHECKSUM = "sha256"


def checksum(obj: object) -> str:
    """SHA-256 of a model record or checkpoint: every tensor's bytes, dtype and shape, every
    other value's repr, walked in key order (the `CHECKSUM` entry itself left out)."""
    digest = hashlib.sha256()

    def walk(x: object) -> None:
        if isinstance(x, Tensor):
            t = x.detach().cpu().contiguous()
            digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(x, dict):
            for key in sorted((k for k in x if k != CHECKSUM), key=repr):
                digest.update(repr(key).encode())
                walk(x[key])
        elif isinstance(x, list | tuple):
            digest.update(f"{type(x).__name__}{len(x)}".encode())
            for item in x:
                walk(item)
        else:
            digest.update(repr(x).encode())

    walk(obj)
    return digest.hexdigest()


def torch_save(obj: dict, path: Path) -> None:
    """torch.save of a record or checkpoint, atomically and with its checksum inside.

    Serialised in memory first, so a full disk surfaces as a plain OSError ("No space left on
    device") rather than torch's zip-writer internals. `torch_load` checks the checksum: torch's
    own format would load bytes damaged on disk (say, inside Adam's moments) without a word.
    """
    buffer = io.BytesIO()
    torch.save({**obj, CHECKSUM: checksum(obj)}, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())


def torch_load(path: Path, kind: str) -> object:
    """`torch.load(weights_only=True)` of a file the user named as a `kind` ("model file"...).

    A pickle that would run code when loaded is refused, never executed, and said so; a file
    that is not a PyTorch file at all (random bytes, a JPEG) is said to be that, not an attack.
    """
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "global" in str(e).lower():  # the weights-only unpickler met a class or function
            raise UserError(
                f"{path}: refused: it holds Python objects that would run code when loaded "
                "(fast-nst loads plain weights only)"
            ) from None
        raise UserError(f"{path}: not a {kind} (not a file torch.save writes)") from None
    except Exception as e:  # torch raises many kinds for a bad file; all mean the same to a user
        if not _torch_file_start(path):  # a text or video file: torch's reason is noise ("101")
            raise UserError(f"{path}: not a {kind} (not a file torch.save writes)") from None
        why = str(e).split(":")[-1].split(".")[0].strip() or type(e).__name__  # torch's own, short
        raise UserError(f"{path}: not a readable {kind} (damaged or cut short: {why})") from None
    if isinstance(obj, dict) and CHECKSUM in obj and obj[CHECKSUM] != checksum(obj):
        raise UserError(f"{path}: damaged: its contents do not match the checksum saved with it")
    return obj


def _torch_file_start(path: Path) -> bool:
    """Whether the file begins as torch.save writes one: a zip archive, or (before torch 1.6) a
    pickle, whose first byte is the protocol opcode."""
    try:
        with open(path, "rb") as f:
            start = f.read(4)
    except OSError:
        return False
    return start.startswith(b"PK\x03\x04") or start[:1] == b"\x80"


def open_image(path: Path) -> Image.Image:
    """Open and fully decode an image, EXIF orientation applied; a `UserError` if it cannot be."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, expected an image file")
    try:
        with Image.open(path) as img:
            frames = getattr(img, "n_frames", 1)
            img.load()
            image = ImageOps.exif_transpose(img)
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError...
        raise UserError(f"{path}: cannot read image ({_reason(e)})") from None
    if frames > 1:  # read as an image it would silently be its first frame alone
        raise UserError(f"{path}: an animated image ({frames} frames); convert it to a video to stylise it")
    return image


def resize_long_side(img: Image.Image, size: int | None) -> Image.Image:
    """Scale so the longer side is `size` pixels (None: unchanged)."""
    if size is None or max(img.size) == size:
        return img
    scale = size / max(img.size)
    new = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(new, Image.Resampling.LANCZOS)


def rgb(img: Image.Image) -> Image.Image:
    """Any image as 8-bit RGB, alpha dropped (the runtime carries it over separately).

    Pillow's own convert("RGB") clips grey of more than 8 bits at 255, turning a 16-bit photo
    white; here it is scaled: 16-bit modes from 65535, a 32-bit integer image from 65535 when it
    holds more than 255 (else as it is), a float image from 1 when it holds no more (else 255).
    """
    if img.mode.startswith("I") or img.mode == "F":
        values = np.asarray(img, dtype=np.float64)
        peak = values.max(initial=0)
        if img.mode == "F":
            white = 1.0 if peak <= 1 else 255.0
        else:
            white = 65535.0 if img.mode.startswith("I;16") or peak > 255 else 255.0
        img = Image.fromarray(np.clip(np.rint(values * (255 / white)), 0, 255).astype(np.uint8), "L")
    return img if img.mode == "RGB" else img.convert("RGB")  # every training crop passes here


# The two conversions between 8-bit pixels and the networks' float RGB in [0, 1]: every image,
# array and video frame goes through these, so a tensor measures the same as its saved file.


def uint8_to_float(pixels: np.ndarray) -> Tensor:
    """(N, H, W, 3) uint8 RGB -> (N, 3, H, W) float32 in [0, 1]."""
    pixels = np.require(pixels, np.uint8, ["C_CONTIGUOUS", "WRITEABLE"])  # copies only if it must
    # One float allocation, made contiguous as it is converted (a 6000x4000 photo: 288 MB each).
    t = torch.from_numpy(pixels).permute(0, 3, 1, 2).to(torch.float32, memory_format=torch.contiguous_format)
    return t.div_(255)


def float_to_uint8(t: Tensor) -> np.ndarray:
    """(N, 3, H, W) float in [0, 1] -> (N, H, W, 3) uint8 RGB, rounded to the nearest level."""
    t = t.detach().float().clamp(0, 1).mul_(255).round_().to(torch.uint8)  # one float copy, not three
    return t.permute(0, 2, 3, 1).contiguous().cpu().numpy()


def pil_to_tensor(img: Image.Image) -> Tensor:
    """PIL image -> (1, 3, H, W) float RGB in [0, 1]."""
    return uint8_to_float(np.asarray(rgb(img), dtype=np.uint8)[None])


def tensor_to_pil(t: Tensor) -> Image.Image:
    """(3, H, W) or (1, 3, H, W) float in [0, 1] -> RGB PIL image."""
    return Image.fromarray(float_to_uint8(t.reshape(1, *t.shape[-3:]))[0], "RGB")


def load_image_tensor(path: Path, long_side: int | None = None) -> Tensor:
    """A file as (1, 3, H, W) RGB in [0, 1], optionally resized to `long_side`."""
    return pil_to_tensor(resize_long_side(open_image(path), long_side))


def refuse_to_replace(path: Path, overwrite: bool, inputs: Iterable[Path] = ()) -> None:
    """A user's file is never replaced unless they asked (--overwrite), and one being read never:
    with --overwrite, `-o` naming the input by mistake would lose the original."""
    path = Path(path)
    if path.exists() and any(path.resolve() == Path(i).resolve() for i in inputs):
        raise UserError(f"{path}: the output would replace the input")
    if path.exists() and not overwrite:
        raise UserError(f"{path}: already exists (use --overwrite to replace it)")


def save_image(img: Image.Image, path: Path, **save_args: object) -> None:
    """Save with the format taken from the extension, atomically."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"{path}: unknown image extension '{path.suffix}' (use .jpg, .png, .webp ...)")
    if fmt == "JPEG" and img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    with atomic_path(path) as tmp:
        img.save(tmp, format=fmt, **save_args)
