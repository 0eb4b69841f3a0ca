"""The photo pipeline: any folder tree, bad files skipped and reported, a reproducible stream."""

import io
import shutil

import pytest
import torch
from conftest import ASSETS
from rich.console import Console

from fast_nst.data import DeviceCrops, StepSampler, find_images, make_loader, preview_split
from fast_nst.errors import UserError


@pytest.fixture
def photo_tree(tmp_path):
    """Real photos in nested folders with mixed-case extensions, plus a corrupt JPEG and a non-image."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    shutil.copy(ASSETS / "chicago.jpg", tmp_path / "a" / "one.JPG")
    shutil.copy(ASSETS / "dog.jpg", tmp_path / "a" / "b" / "two.jpeg")
    shutil.copy(ASSETS / "mosaic.jpg", tmp_path / "three.jpg")
    data = (ASSETS / "dog.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (tmp_path / "notes.jpg").write_text("this is not an image")
    (tmp_path / "readme.txt").write_text("ignored: not an image extension")
    return tmp_path


def test_finds_images_recursively_any_case(photo_tree):
    names = sorted(p.name for p in find_images(photo_tree))
    assert names == ["notes.jpg", "one.JPG", "three.jpg", "truncated.jpg", "two.jpeg"]


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "x.txt").write_text("no images here")
    with pytest.raises(UserError, match="no images found"):
        find_images(tmp_path)
    with pytest.raises(UserError, match="not a folder"):
        find_images(tmp_path / "missing")


def test_bad_files_are_skipped_and_reported(photo_tree):
    files = find_images(photo_tree)
    loader = make_loader(files, 64, batch_size=5, seed=0, start_step=0, steps=4, workers=0, pin_memory=False)
    reported, batches = set(), 0
    for images, failed in loader:
        assert images.shape == (5, 3, 64, 64) and images.dtype == torch.uint8
        reported.update(m.split(":")[0] for m in failed)
        batches += 1
    assert batches == 4
    assert {p.rsplit("/", 1)[-1] for p in reported} == {"truncated.jpg", "notes.jpg"}


def test_stream_is_the_same_with_workers_and_from_any_step():
    files = find_images(ASSETS)

    def batches(start, workers):
        loader = make_loader(
            files, 32, 2, seed=3, start_step=start, steps=6, workers=workers, pin_memory=False
        )
        return [x for x, _ in loader]

    full = batches(0, 0)
    assert all(torch.equal(a, b) for a, b in zip(full, batches(0, 2), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(full[4:], batches(4, 0), strict=True))
    assert not torch.equal(full[0], full[1])


def test_sampler_visits_every_file_once_per_epoch():
    seen = [i for batch in StepSampler(10, 5, seed=1, start_step=0, steps=4) for i, _ in batch]
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:]) == list(range(10))
    assert seen[:10] != seen[10:]


def test_preview_photos_are_held_out_and_fixed(photo_tree):
    files = find_images(photo_tree)
    train_a, prev_a = preview_split(files, 2, 48)
    train_b, prev_b = preview_split(files, 2, 48)
    assert torch.equal(prev_a, prev_b) and prev_a.shape == (2, 3, 48, 48)
    assert len(train_a) == len(files) - 2 and train_a == train_b


def test_device_crops_are_the_loader_crops_and_resume_anywhere(photo_tree):
    """Photos decoded once into (here, CPU) device memory: the loader's crop boxes and flips,
    resampled from the stored copy; the same stream from any step; bad files reported once."""
    files = find_images(photo_tree)
    quiet = Console(file=io.StringIO())
    crops = DeviceCrops(files, 64, torch.device("cpu"), quiet)
    assert len(crops) == 3 and len(crops.failed) == 2
    stream = list(crops.batches(4, seed=3, start_step=0, steps=5))
    assert [len(failed) for _, failed in stream] == [2, 0, 0, 0, 0]
    resumed = [x for x, _ in crops.batches(4, seed=3, start_step=3, steps=5)]
    assert all(torch.equal(a, b) for (a, _), b in zip(stream[3:], resumed, strict=True))
    # The loader over the readable files draws the same boxes: the images differ only by resampling.
    readable = [f for f in files if f.name in ("one.JPG", "two.jpeg", "three.jpg")]
    loader = make_loader(readable, 64, 4, seed=3, start_step=0, steps=5, workers=0, pin_memory=False)
    ours = torch.cat([x for x, _ in stream])
    theirs = torch.cat([x for x, _ in loader])
    assert ours.shape == theirs.shape == (20, 3, 64, 64) and ours.dtype == torch.uint8
    assert (ours.float() - theirs.float()).abs().mean() < 12  # of 255; other boxes or flips: over 40


def test_device_crops_of_only_unreadable_files_is_one_error(photo_tree):
    bad = [f for f in find_images(photo_tree) if f.name in ("truncated.jpg", "notes.jpg")]
    with pytest.raises(UserError, match="none of the 2 photos could be read"):
        DeviceCrops(bad, 64, torch.device("cpu"), Console(file=io.StringIO()))
