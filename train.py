"""`python train.py ...` is `fast-nst train ...`: see `python train.py --help`."""

from fast_nst.cli import app

if __name__ == "__main__":
    app.script("train", prog_name="train.py")
