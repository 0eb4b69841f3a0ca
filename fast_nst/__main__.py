"""`python -m fast_nst` is the `fast-nst` command."""

from fast_nst.cli import app

app(prog_name="fast-nst")
