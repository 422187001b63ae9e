"""`edgeemo run`, `doctor` and `demo`: the device daemon and its checks (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from edgeemo.cli.app import app, clean_errors
from edgeemo.errors import EdgeemoError


@app.command("demo")
@clean_errors
def demo_cmd(
    image: Annotated[
        Path | None,
        typer.Option(help="A photo with a face. Default: the public-domain portrait of Grace Hopper in "
                     "matplotlib's sample data."),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model", "-m", help="Shipped model name or model file; repeat for several. Default: face and face-float."
        ),
    ] = None,
    threads: Annotated[int | None, typer.Option(help="Interpreter threads (default: the runtime's choice).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Run the shipped face models on a photo: no camera, microphone or dataset needed."""
    import json

    from edgeemo.device.demo import demo_table, run_demo

    result = run_demo(image, tuple(model or ("face", "face-float")), threads)
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        Console().print(demo_table(result))


@app.command("run")
@clean_errors
def run_cmd(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="device.toml (every key documented in device/device.toml).")
    ] = None,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Replay a built-in 8 s clip (a shipped portrait + a synthetic voice) instead of the camera and "
            "microphone, print the results, exit (with --loop: until stopped; with --http: also serve it). Needs no "
            "camera, microphone or dataset.",
        ),
    ] = False,
    camera: Annotated[
        str | None,
        typer.Option(help="Camera: index, /dev/videoN, picamera2, a GStreamer pipeline, a video file or image folder."),
    ] = None,
    microphone: Annotated[
        str | None, typer.Option(help="Microphone: pyaudio device index or name, default, or a WAV/FLAC file.")
    ] = None,
    no_camera: Annotated[bool, typer.Option("--no-camera", help="Voice only.")] = False,
    no_microphone: Annotated[bool, typer.Option("--no-microphone", help="Face only.")] = False,
    loop: Annotated[
        bool | None, typer.Option("--loop/--no-loop", help="Replays (and --demo) start again at the end.")
    ] = None,
    face_model: Annotated[str | None, typer.Option(help="Face model: shipped name or file.")] = None,
    voice_model: Annotated[str | None, typer.Option(help="Voice model: shipped name or file.")] = None,
    backend: Annotated[str | None, typer.Option(help="auto, litert, tflite-runtime or onnxruntime.")] = None,
    threads: Annotated[int | None, typer.Option(min=0, help="Threads per model (0: runtime's choice).")] = None,
    stdout: Annotated[str | None, typer.Option(help="Results on stdout: json, text or off.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --stdout json.")] = False,
    output: Annotated[Path | None, typer.Option(help="Also write JSON lines to this file (rotated).")] = None,
    http: Annotated[bool | None, typer.Option("--http/--no-http", help="Serve /latest, /events, /health.")] = None,
    host: Annotated[str | None, typer.Option(help="HTTP address (default 127.0.0.1: this machine only).")] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="HTTP port (default 8765).")] = None,
    mqtt: Annotated[str | None, typer.Option(help="Publish to this MQTT broker (host or host:port).")] = None,
    duration: Annotated[float | None, typer.Option(min=0.0, help="Stop after this many seconds.")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning or error (stderr).")] = None,
) -> None:
    """Run the device daemon: camera + microphone -> face and voice models -> fused emotions.

    Results (labels, probabilities, timestamps; never frames or audio) go to stdout as JSON
    lines, to a rotating file, to http://127.0.0.1:8765/latest, /events (SSE) and /health, and
    optionally to MQTT. SIGTERM or Ctrl-C stops it cleanly. A camera or microphone that fails
    while running is retried with backoff while the other modality keeps working.

    Example: edgeemo run --demo    |    edgeemo run --config device.toml --port 9000
    """
    from edgeemo.device.config import load_config, override
    from edgeemo.device.daemon import demo_config, run_daemon, setup_logging

    cfg = load_config(config)
    if demo:
        cfg = demo_config(cfg)
    mqtt_host, _, mqtt_port = (mqtt or "").partition(":")
    if mqtt_port and not mqtt_port.isdigit():
        raise EdgeemoError(f"--mqtt must be host or host:port, got {mqtt!r}")
    cfg = override(
        cfg,
        camera__source=camera, camera__enabled=False if no_camera else None, camera__loop=loop,
        microphone__source=microphone, microphone__enabled=False if no_microphone else None, microphone__loop=loop,
        models__face=face_model, models__voice=voice_model, models__backend=backend, models__threads=threads,
        output__stdout="json" if as_json else stdout, output__file=None if output is None else str(output),
        http__enabled=http, http__host=host, http__port=port,
        mqtt__enabled=True if mqtt else None, mqtt__host=mqtt_host or None,
        mqtt__port=int(mqtt_port) if mqtt_port else None,
        log__level=log_level,
    )
    setup_logging(cfg.log.level if log_level or not demo else "warning")
    run_daemon(cfg, demo=demo, duration_s=duration)


@app.command("doctor")
@clean_errors
def doctor_cmd(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="device.toml to check.")] = None,
    camera: Annotated[str | None, typer.Option(help="Camera to try instead of the config's.")] = None,
    microphone: Annotated[str | None, typer.Option(help="Microphone to try instead of the config's.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check this device: runtimes, camera, microphone, models (manifest, sha256) and output packages.

    Exits 1 when something the config needs is broken (a model, an enabled camera or microphone).
    """
    import json

    from edgeemo.device.config import load_config, override
    from edgeemo.device.doctor import checks_table, run_checks

    cfg = override(load_config(config), camera__source=camera, microphone__source=microphone)
    checks = run_checks(cfg)
    if as_json:
        print(json.dumps(checks, indent=2))
    else:
        Console().print(checks_table(checks))
    if any(c["status"] == "fail" for c in checks):
        raise typer.Exit(1)
