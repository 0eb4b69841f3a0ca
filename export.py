"""`python export.py ...` is `fast-nst export ...`: see `python export.py --help`."""

from fast_nst.cli import app

if __name__ == "__main__":
    app.script("export", prog_name="export.py")
