"""``python -m edgeemo``: the same command line as ``edgeemo``."""

from edgeemo.cli import app

app(prog_name="edgeemo")
