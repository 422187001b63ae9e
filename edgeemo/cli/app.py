"""The ``edgeemo`` app, its ``--version`` and the error handling every command shares: an
``EdgeemoError`` is one red line and exit code 1, never a traceback."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from edgeemo import __version__
from edgeemo.cli.quiet import quieten
from edgeemo.errors import EdgeemoError

err = Console(stderr=True)

app = typer.Typer(
    help="edgeemo: emotion recognition from faces and voices on the edge. "
    "Train on a workstation, export int8 TFLite/ONNX, benchmark, run on a Pi or Jetson.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def reflow(doc: str | None) -> str | None:
    """A docstring as help text: each paragraph on one line, so the terminal wraps it (typer's rich help
    keeps the docstring's line breaks, which wrapped raggedly: "side by / side")."""
    if not doc:
        return doc
    return "\n\n".join(" ".join(p.split()) for p in inspect.cleandoc(doc).split("\n\n"))


def clean_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn EdgeemoError into one red line and exit code 1: no traceback for user mistakes. Every command
    has it, so it also gives every command its help text (``reflow``)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EdgeemoError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    wrapper.__doc__ = reflow(fn.__doc__)
    return wrapper


def version_callback(value: bool) -> None:
    if value:
        print(f"edgeemo {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Print the version and exit.")
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Also show the libraries' own log lines (TensorFlow, LiteRT, OpenCV, "
                     "JACK), hidden by default."),
    ] = False,
) -> None:
    """edgeemo command line."""
    quieten(verbose)

