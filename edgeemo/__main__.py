"""``python -m edgeemo``: the same command line as ``edgeemo``."""

from edgeemo.cli import app

if __name__ == "__main__":  # not when a spawned worker process imports the parent's main module
    app(prog_name="edgeemo")
