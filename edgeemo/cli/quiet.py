"""Keep other libraries' chatter off the terminal unless ``edgeemo --verbose``.

Native code writes straight to file descriptor 2, past Python's ``sys.stderr``: LiteRT's "INFO: Created
TensorFlow Lite XNNPACK delegate" on every model load, absl/TensorFlow start-up lines, OpenCV's "[ WARN:"
when a camera index does not open, JACK's "Cannot connect to server" when PortAudio probes. ``quieten``
turns down what has a switch (TensorFlow's log level, OpenCV's, Keras' shuffle warning) and routes fd 2
through a pipe whose reader drops the known lines and passes everything else through at once; Python's own
``sys.stderr`` keeps writing to the terminal itself.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import warnings

NOISE = (
    b"INFO: Created TensorFlow Lite XNNPACK delegate",
    b"INFO: Initialized TensorFlow Lite runtime",
    b"WARNING: All log messages before absl::InitializeLog() is called",
    b"I0000 ", b"W0000 ", b"E0000 ",  # absl log lines
    # the further lines of TensorFlow's multi-worker errors (the first starts with E0000); edgeemo says it in one
    b"Additional GRPC error information from remote target", b":UNKNOWN:Error received from peer", b"/job:",
    b"The tasks have crashed.", b"The error could be from a previous operation.",
    b"[ WARN:",  # OpenCV
    b"Cannot connect to server", b"jack server is not running", b"JackShmReadWritePtr",  # libjack via PortAudio
)
_installed = False


def is_noise(line: bytes) -> bool:
    return line.lstrip().startswith(NOISE)


def may_become_noise(partial: bytes) -> bool:
    """An unfinished line that could still turn out to be noise (held back until its newline)."""
    text = partial.lstrip()
    return any(p.startswith(text) or text.startswith(p) for p in NOISE)


def _pump(read_fd: int, write_fd: int) -> None:
    held = b""
    while chunk := os.read(read_fd, 65536):
        *lines, held = (held + chunk).split(b"\n")
        out = b"".join(line + b"\n" for line in lines if not is_noise(line))
        if held and not may_become_noise(held):  # progress bars and prompts go out without waiting
            out, held = out + held, b""
        if out:
            os.write(write_fd, out)
    if held and not is_noise(held):
        os.write(write_fd, held)
    os.close(read_fd)


def quieten(verbose: bool) -> None:
    """Called once per process by the ``edgeemo`` callback, before any command imports a stage."""
    global _installed
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    warnings.filterwarnings("ignore", message=r".*`shuffle=True` was passed", category=UserWarning)
    if _installed:
        return
    try:
        if sys.stderr.fileno() != 2:  # a test's captured stream: nothing native to filter there
            return
    except (AttributeError, OSError, ValueError):
        return
    _installed = True
    sys.stderr.flush()
    terminal = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)  # native code (and child processes) now write into the filter
    os.close(write_fd)
    # Python writes straight to the terminal, so rich still sees a terminal (colours, progress bars);
    # the file stays open for the life of the process.
    sys.stderr = open(  # noqa: SIM115
        terminal, "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace", closefd=False)
    pump = threading.Thread(target=_pump, args=(read_fd, terminal), name="stderr-filter", daemon=True)
    pump.start()

    def restore() -> None:
        sys.stderr.flush()
        os.dup2(terminal, 2)  # the pipe's last writer closes: the pump drains and ends
        pump.join(timeout=2)

    atexit.register(restore)
