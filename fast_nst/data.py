"""Training photos: any folder tree of images, cropped and flipped at random, batch by batch.

Randomness comes from a seed per sample, derived from (run seed, position in the stream), never
from a worker's global RNG: the stream of batches is the same whatever the number of workers, and
a resumed run picks it up at its step with nothing else to restore.
"""

from __future__ import annotations

import math
import os
import random
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from rich.console import Console
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from .errors import UserError
from .files import IMAGE_EXTENSIONS, open_image, rgb
from .progress import progress_bar

Sample = tuple[int, int]  # (file index, augmentation seed)


def find_files(root: Path, extensions: frozenset[str]) -> list[Path]:
    """The files under `root` with one of `extensions` (recursive, any case, hidden ones left
    out), sorted for reproducibility."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: not a folder")
    return sorted(
        Path(d) / f
        for d, _, names in os.walk(root, followlinks=True)
        for f in names
        if Path(f).suffix.lower() in extensions and not f.startswith(".")
    )


def find_images(root: Path) -> list[Path]:
    """All image files under `root`; a `UserError` if there are none."""
    if not Path(root).is_dir():
        raise UserError(f"{root}: not a folder of images")
    files = find_files(root, IMAGE_EXTENSIONS)
    if not files:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise UserError(f"{root}: no images found (looked for {exts}, in all subfolders)")
    return files


def require_readable(files: list[Path], root: Path) -> None:
    """A `UserError` naming the folder when not one of its images decodes.

    Stops at the first photo that does, so it costs one decode for a usable folder; without it a
    folder of broken files fails inside a loader worker, far from anything the user can act on.
    """
    errors = []
    for path in files:
        try:
            _open_for_crop(path, 64)
            return
        except UserError as e:
            errors.append(str(e))
    raise UserError(f"{root}: none of its {len(files)} images could be read (first: {errors[0]})")


def crop_box(w: int, h: int, rng: random.Random, min_area: float = 0.5) -> tuple[int, int, int, int]:
    """(x, y, width, height) of a random square-ish region of at least `min_area` of a w x h photo."""
    for _ in range(10):
        area = w * h * rng.uniform(min_area, 1.0)
        aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        cw, ch = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            return rng.randint(0, w - cw), rng.randint(0, h - ch), cw, ch
    side = min(w, h)  # extreme aspect ratios: the largest centred square
    return (w - side) // 2, (h - side) // 2, side, side


def random_resized_crop(img: Image.Image, size: int, rng: random.Random) -> Image.Image:
    """A random `crop_box` of the photo, resized to size x size."""
    x, y, cw, ch = crop_box(*img.size, rng)
    return img.resize((size, size), Image.Resampling.BILINEAR, box=(x, y, x + cw, y + ch))


def center_crop(img: Image.Image, size: int) -> Image.Image:
    side = min(img.size)
    x, y = (img.width - side) // 2, (img.height - side) // 2
    return img.resize((size, size), Image.Resampling.BICUBIC, box=(x, y, x + side, y + side))


def to_uint8_chw(img: Image.Image) -> Tensor:
    """uint8 (3, H, W): a quarter of the bytes of float on their way out of the worker."""
    return torch.from_numpy(np.asarray(rgb(img), dtype=np.uint8).copy()).permute(2, 0, 1)


class CropDataset(Dataset[tuple[Tensor, list[str]]]):
    """Indexed by (file index, seed); yields (uint8 crop, files that failed on the way).

    A file that cannot be decoded is replaced by another one chosen with the same seed, and
    reported to the training loop, which warns once per file and counts them.
    """

    def __init__(self, files: list[Path], size: int) -> None:
        self.files, self.size = files, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, sample: Sample) -> tuple[Tensor, list[str]]:
        index, seed = sample
        rng = random.Random(seed)
        failed: list[str] = []
        for _ in range(min(len(self.files), 100)):
            path = self.files[index]
            try:
                img = _open_for_crop(path, self.size)
                break
            except UserError as e:
                failed.append(str(e))
                index = rng.randrange(len(self.files))
        else:
            raise UserError(f"gave up: {len(failed)} images in a row could not be read")
        crop = random_resized_crop(img, self.size, rng)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return to_uint8_chw(crop), failed


def _open_for_crop(path: Path, size: int) -> Image.Image:
    # JPEG draft mode decodes at 1/2, 1/4 or 1/8 scale directly: big photos decode several times
    # faster, and the crop still has at least twice the pixels it is resized to.
    try:
        with Image.open(path) as img:
            img.draft("RGB", (2 * size, 2 * size))
            img.load()
            return rgb(img)
    except Exception as e:
        raise UserError(f"{path}: {type(e).__name__}: {e}") from None


class StepSampler(Sampler[list[Sample]]):
    """Batches of (file index, seed) for steps `start_step`, `start_step + 1`, ... `steps - 1`.

    Epoch e visits the files in a permutation seeded by (seed, e); every sample's augmentation
    seed is its position in the stream, so step s always sees the same crops. Of a step's
    `batch_size` crops, process `rank` of `world` (torchrun) takes its equal share, in order.
    """

    def __init__(
        self,
        n_files: int,
        batch_size: int,
        seed: int,
        start_step: int,
        steps: int,
        rank: int = 0,
        world: int = 1,
    ):
        self.n, self.batch, self.seed = n_files, batch_size, seed
        self.start, self.steps = start_step, steps
        self.share = batch_size // world
        self.offset = rank * self.share

    def __len__(self) -> int:
        return max(0, self.steps - self.start)

    def __iter__(self) -> Iterator[list[Sample]]:
        perm_epoch, perm = -1, torch.empty(0, dtype=torch.long)
        for step in range(self.start, self.steps):
            batch = []
            first = step * self.batch + self.offset
            for pos in range(first, first + self.share):
                epoch = pos // self.n
                if epoch != perm_epoch:
                    g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
                    perm, perm_epoch = torch.randperm(self.n, generator=g), epoch
                batch.append((int(perm[pos % self.n]), self.seed * 1_000_003 + pos))
            yield batch


def _collate(items: list[tuple[Tensor, list[str]]]) -> tuple[Tensor, list[str]]:
    return torch.stack([x for x, _ in items]), [f for _, fs in items for f in fs]


def _leave_signals_to_the_trainer(worker_id: int) -> None:
    """Workers ignore Ctrl-C and SIGTERM: the trainer stops them after saving its checkpoint (a
    worker's copy of the trainer's handler would announce that checkpoint once per worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def make_loader(
    files: list[Path],
    size: int,
    batch_size: int,
    seed: int,
    start_step: int,
    steps: int,
    workers: int,
    pin_memory: bool,
    rank: int = 0,
    world: int = 1,
) -> DataLoader:
    """Batches of (uint8 images (B, 3, size, size), messages for unreadable files); under torchrun,
    this process's share of each."""
    return DataLoader(
        CropDataset(files, size),
        worker_init_fn=_leave_signals_to_the_trainer,
        batch_sampler=StepSampler(len(files), batch_size, seed, start_step, steps, rank, world),
        num_workers=workers,
        collate_fn=_collate,
        pin_memory=pin_memory,
        persistent_workers=False,
        prefetch_factor=4 if workers > 0 else None,
    )


class DeviceCrops:
    """Every photo decoded once into one uint8 tensor on the training device; crops made there.

    A GPU step takes a few milliseconds, far less than decoding its photos from JPEG on a few
    CPU cores, so on CUDA the photos are decoded up front (in parallel, once) and each batch is
    one gather plus one `grid_sample` on the device. Each photo is stored squashed to a
    `store` x `store` square and remembers its own width and height, so crops have the
    geometry `crop_box` gives the CPU loader, with the same seeds: the stream is as reproducible
    and resumable, and sees the same regions (resampled from the stored copy, not the file).
    """

    def __init__(self, files: list[Path], size: int, device: torch.device, console: Console) -> None:
        self.size = size
        self.store = self.stored_side(size)
        images = torch.empty(len(files), 3, self.store, self.store, dtype=torch.uint8, device=device)
        self.shapes: list[tuple[int, int]] = []
        self.failed: list[str] = []
        kept = 0
        progress = progress_bar("decode", console)
        with progress, ThreadPoolExecutor(min(16, os.cpu_count() or 1)) as pool:
            task = progress.add_task("", total=len(files))
            for result in pool.map(self._decode, files):
                if isinstance(result, UserError):
                    self.failed.append(str(result))
                else:
                    pixels, shape = result
                    images[kept].copy_(pixels)
                    self.shapes.append(shape)
                    kept += 1
                progress.advance(task)
        if kept == 0:
            raise UserError(f"none of the {len(files)} photos could be read (first: {self.failed[0]})")
        self.images = images[:kept]

    @staticmethod
    def stored_side(size: int) -> int:
        """A half-area crop of the stored square is still upsampled no more than 1.14x."""
        return math.ceil(size * 5 / 4)

    @classmethod
    def bytes_needed(cls, n_photos: int, size: int) -> int:
        return n_photos * 3 * cls.stored_side(size) ** 2

    def _decode(self, path: Path) -> tuple[Tensor, tuple[int, int]] | UserError:
        try:
            img = _open_for_crop(path, self.store)
        except UserError as e:
            return e
        square = img.resize((self.store, self.store), Image.Resampling.BILINEAR)
        return to_uint8_chw(square), img.size

    def __len__(self) -> int:
        return len(self.shapes)

    def batches(
        self, batch_size: int, seed: int, start_step: int, steps: int, rank: int = 0, world: int = 1
    ) -> Iterator[tuple[Tensor, list[str]]]:
        """uint8 (B, 3, size, size) batches on the device, as `make_loader` yields them.

        The photos that could not be decoded come with the first batch, for the loop to report.
        """
        failed = self.failed
        for batch in StepSampler(len(self), batch_size, seed, start_step, steps, rank, world):
            yield self.crops(batch), failed
            failed = []

    def crops(self, batch: list[Sample]) -> Tensor:
        theta = torch.zeros(len(batch), 2, 3)
        for row, (index, sample_seed) in enumerate(batch):
            rng = random.Random(sample_seed)
            w, h = self.shapes[index]
            x, y, cw, ch = crop_box(w, h, rng)
            flip = -1.0 if rng.random() < 0.5 else 1.0
            # The box in grid_sample's [-1, 1] coordinates: centre and half-extent per axis.
            theta[row, 0, 0], theta[row, 0, 2] = flip * cw / w, (2 * x + cw) / w - 1
            theta[row, 1, 1], theta[row, 1, 2] = ch / h, (2 * y + ch) / h - 1
        indices = torch.tensor([i for i, _ in batch], device=self.images.device)
        source = self.images.index_select(0, indices).float()
        grid = F.affine_grid(
            theta.to(source.device), [len(batch), 3, self.size, self.size], align_corners=False
        )
        crops = F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return crops.round_().clamp_(0, 255).to(torch.uint8)


def spaced_photos(files: list[Path], count: int, size: int) -> tuple[list[int], Tensor]:
    """`count` readable photos evenly spaced over the sorted list, centre-cropped to size x size.

    Returns their indices and a float (N, 3, size, size) batch: the same images every time for
    the same folder, so whatever is computed from them is the same when a run resumes.
    """
    spaced = [int(k * len(files) / count) for k in range(count)]
    first = set(spaced)
    order = spaced + [i for i in range(len(files)) if i not in first]
    picked: list[int] = []
    images: list[Tensor] = []
    for index in order:
        if len(picked) == count:
            break
        try:
            images.append(to_uint8_chw(center_crop(open_image(files[index]), size)))
            picked.append(index)
        except UserError:
            continue
    return picked, torch.stack(images).float().div(255) if images else torch.empty(0, 3, size, size)


def preview_split(files: list[Path], count: int, size: int) -> tuple[list[Path], Tensor]:
    """Hold out `count` photos (`spaced_photos`) for preview grids; returns the rest and them."""
    if count <= 0:
        return files, torch.empty(0, 3, size, size)
    if len(files) <= count:
        folder = f"{files[0].parent}: " if files else ""
        raise UserError(
            f"{folder}{len(files)} image(s) found; training needs more than {count}, which are held out "
            "for the preview grids"
        )
    held, images = spaced_photos(files, count, size)
    held_set = set(held)
    return [f for i, f in enumerate(files) if i not in held_set], images
