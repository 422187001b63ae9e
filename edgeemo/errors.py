"""One error type for everything a user can get wrong: it names the file and the problem."""

from __future__ import annotations

from pathlib import Path


class EdgeemoError(Exception):
    """A user-facing error. The CLI prints it as one line and exits non-zero, no traceback."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)


class MissingDependencyError(EdgeemoError):
    """An optional package (an extra) is needed for this command but not installed."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(f"{purpose} needs the '{package}' package: pip install 'edgeemo[{extra}]'")


class SourceOverflow(EdgeemoError):  # noqa: N818 (an event, not a failure: the source is still open)
    """A source lost data (its own buffer overran) but is still open: counted, not reopened."""
