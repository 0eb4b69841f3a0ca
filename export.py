"""`python export.py ...` is `fast-nst export ...`: see `python export.py --help`."""

import sys

from fast_nst.cli import app

if __name__ == "__main__":
    app(["export", *sys.argv[1:]], prog_name="export.py")
