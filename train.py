"""`python train.py ...` is `fast-nst train ...`: see `python train.py --help`."""

import sys

from fast_nst.cli import app

if __name__ == "__main__":
    app(["train", *sys.argv[1:]], prog_name="train.py")
