"""`edgeemo bench` and `edgeemo predict`: the device runtimes only, never TensorFlow."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from edgeemo.cli.app import app, clean_errors, err
from edgeemo.errors import EdgeemoError

if TYPE_CHECKING:
    from edgeemo.face_detect import DetectorSettings


def detector_settings(config: Path | None, detector: str | None) -> DetectorSettings:
    """The detection settings the daemon would use: the [pipeline] table of ``config`` (or the
    daemon's defaults), with ``detector`` replacing its detector when given."""
    from dataclasses import replace

    from edgeemo.face_detect import DetectorSettings

    settings = DetectorSettings()
    if config is not None:
        from edgeemo.device.config import load_config

        settings = load_config(config).pipeline.detection()
    return settings if detector is None else replace(settings, detector=detector)


def print_photos(photos: list[dict[str, Any]], as_json: bool, title: str) -> None:
    """``predict --detect``: one JSON line per photo, or a table with one row per face."""
    import json

    from rich.table import Table

    from edgeemo.report import print_wide

    if as_json:
        for r in photos:
            print(json.dumps({k: r[k] for k in ("image", "faces", "label", "score", "probs", "detections")}))
        return
    table = Table(title=title)
    for col in ("image", "face box (x, y, w, h)", "emotion", "p", "top"):
        table.add_column(col)
    for r in photos:
        if not r["detections"]:
            table.add_row(r["image"], "no face", "", "", "")
        for d in r["detections"]:
            top_text = ", ".join(f"{k} {v:.2f}" for k, v in d["top"])
            table.add_row(r["image"], ", ".join(map(str, d["box"])), d["label"], f"{d['score']:.2f}", top_text)
    print_wide(Console(), table)


@app.command("bench")
@clean_errors
def bench_cmd(
    models: Annotated[
        list[str],
        typer.Argument(
            help="Model files (.tflite, .onnx, .keras) or shipped names (face, face-float, face-onnx, "
            "voice, voice-float, voice-onnx). Each is checked against its manifest.",
            show_default=False,
        ),
    ],
    data: Annotated[
        str,
        typer.Option(
            help="Face models: a FER2013 root (split picked by --split), a <label>/*.jpg folder such as CK+48, "
            "or fer2013.csv. Voice models: corpus folder(s), comma-separated (RAVDESS, TESS, CREMA-D, SAVEE).",
            show_default=False,
        ),
    ],
    speakers: Annotated[
        str | None,
        typer.Option(help="Voice: only these speakers, comma-separated (e.g. 17,18,19,20: RAVDESS held-out actors)."),
    ] = None,
    dataset: Annotated[str, typer.Option(help="auto, fer2013 or ckplus (label names).")] = "auto",
    split: Annotated[
        str,
        typer.Option(
            help="Split folder inside a FER2013 root, or the Usage of fer2013.csv (train, publictest, privatetest)."
        ),
    ] = "publictest",
    json_path: Annotated[
        Path | None,
        typer.Option(
            "--json",
            help="Write the full report (machine, data, per-model metrics, latency, memory) to this JSON file.",
        ),
    ] = None,
    plot_dir: Annotated[
        Path | None,
        typer.Option(help="Folder for confusion-<model>.png. Default: the folder of --json (none without either)."),
    ] = None,
    plots: Annotated[bool, typer.Option(help="Write confusion PNGs (needs matplotlib).")] = True,
    threads: Annotated[
        int | None,
        typer.Option(min=1, help="Interpreter threads per model. Default: the available cores."),
    ] = None,
    runs: Annotated[int, typer.Option(min=1, help="Timed batch-1 predictions per model (latency p50/p90/p99).")] = 200,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed batch-1 predictions first.")] = 20,
    batch_size: Annotated[
        int,
        typer.Option(min=1, help="Batch of the accuracy pass (fixed-batch models use their own)."),
    ] = 64,
    limit_per_class: Annotated[
        int | None, typer.Option(min=1, help="Use the first N faces of each class (quick runs).")
    ] = None,
    detect: Annotated[
        bool,
        typer.Option(
            "--detect",
            help="The data are whole photos (label folders or a labels.csv with path,label columns): find the face "
            "with the daemon's detector and crop first (no face found: counted as wrong, in no_face).",
        ),
    ] = False,
    detector: Annotated[
        str | None,
        typer.Option(help="With --detect: blazeface (the daemon's default) or haar. Default: as --config says."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="With --detect: a device.toml whose [pipeline] detection settings to use."),
    ] = None,
    backend: Annotated[
        str,
        typer.Option(help="auto (by file type), litert or tflite-runtime (.tflite), onnxruntime (.onnx)."),
    ] = "auto",
    adapt: Annotated[
        bool,
        typer.Option(help="Voice models that adapt to their speaker (manifest 'adaptation'): hear each speaker's "
                     "clips in a seeded random order with running statistics, as the device does. --no-adapt: "
                     "every clip alone."),
    ] = True,
    seed: Annotated[int, typer.Option(help="Voice adaptation: the seed of the order clips are heard in.")] = 0,
) -> None:
    """Compare models on labelled faces or voice clips: accuracy, macro-F1, UAR, per-class P/R/F1,
    latency, size, memory.

    Every model gets the preprocessing from its own manifest. Prints the models side by
    side; with --json, writes the whole report and, beside it (or in --plot-dir), a confusion-matrix PNG per model.
    Only LiteRT / onnxruntime are loaded, unless a .keras model is given.

    Example: edgeemo bench face-float face face-onnx --data ../shared/data/fer2013
    --json bench/fer2013.json

    Voice: edgeemo bench voice voice-float --data ../shared/data/ravdess --speakers 17,18,19,20

    Camera path (whole photos -> the daemon's detector and crop -> model):
    edgeemo bench face --data ../shared/data/taiwanese-faces --detect [--detector haar | --config device.toml]
    """
    from edgeemo.bench import run_bench
    from edgeemo.report import render_table, write_json, write_plots

    if detect:
        from edgeemo.camera_bench import run_detect_bench

        report = run_detect_bench(models, data, detector_settings(config, detector), runs=runs, warmup=warmup,
                                  threads=threads, limit_per_class=limit_per_class, backend=backend,
                                  batch_size=batch_size, dataset="fer2013" if dataset == "auto" else dataset,
                                  progress=lambda msg: err.print(msg, style="dim", highlight=False))
    elif detector is not None or config is not None:
        raise EdgeemoError("--detector and --config go with --detect (whole photos through the camera path)")
    else:
        report = run_bench(
            models,
            data,
            dataset=dataset,
            split=split,
            runs=runs,
            warmup=warmup,
            threads=threads,
            limit_per_class=limit_per_class,
            backend=backend,
            batch_size=batch_size,
            progress=lambda msg: err.print(msg, style="dim", highlight=False),
            speakers=[s.strip() for s in speakers.split(",") if s.strip()] if speakers else None,
            adapt=adapt,
            seed=seed,
        )
    render_table(report, Console())
    if json_path is not None:
        err.print(f"wrote {write_json(report, json_path)}", highlight=False)
    out_dir = plot_dir or (json_path.parent if json_path is not None else None)
    if plots and out_dir is not None:  # never litter the working directory
        warn = lambda m: err.print(f"[yellow]warning:[/] {m}")  # noqa: E731
        for path in write_plots(report, out_dir, warn=warn):
            err.print(f"wrote {path}", highlight=False)


@app.command("predict")
@clean_errors
def predict_cmd(
    model: Annotated[
        str,
        typer.Argument(
            help="Model file (.tflite, .onnx, .keras) or shipped name (face, face-float, face-onnx, voice, ...).",
            show_default=False,
        ),
    ],
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="Face crops (any size, gray or colour; jpg, png...) for a face model; audio clips (WAV, FLAC, "
            "any rate) for a voice model.",
            show_default=False,
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per image (JSON lines).")] = False,
    top: Annotated[int, typer.Option(min=1, help="How many likeliest emotions to show.")] = 3,
    detect: Annotated[
        bool,
        typer.Option(
            "--detect",
            help="Face models: the images are whole photos: find every face with the daemon's detector and crop, "
            "print each face's box and emotion (a photo without a face says so).",
        ),
    ] = False,
    detector: Annotated[
        str | None,
        typer.Option(help="With --detect: blazeface (the daemon's default) or haar. Default: as --config says."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="With --detect: a device.toml whose [pipeline] detection settings to use."),
    ] = None,
    backend: Annotated[
        str,
        typer.Option(help="auto (by file type), litert or tflite-runtime (.tflite), onnxruntime (.onnx)."),
    ] = "auto",
    threads: Annotated[
        int | None, typer.Option(min=1, help="Interpreter threads (default: the runtime's choice).")
    ] = None,
) -> None:
    """Classify the emotion of face crops or voice clips with a model, preprocessed as its manifest says.

    Every input is read first, so one unreadable file stops the command before any
    output. Images are cropped faces, or whole photos with --detect (every face found by the
    daemon's detector, with its box; a photo without a face says "no face"); a clip without
    speech is reported as "no speech", not guessed.

    Example: edgeemo predict face happy.jpg sad.png --json; edgeemo predict face photo.jpg --detect;
    edgeemo predict voice clip.wav
    """
    import json

    from edgeemo.predict import (
        open_emotion_model,
        predict_clips,
        predict_images,
        predict_photos,
        predictions_table,
    )
    from edgeemo.report import print_wide

    opened = open_emotion_model(model, backend=backend, threads=threads)
    for note in opened.notes:
        err.print(f"[yellow]note:[/] {note}", highlight=False)
    key = "image" if opened.task == "face" else "clip"
    if detect:
        if opened.task != "face":
            raise EdgeemoError("--detect is for face models (whole photos)", opened.path)
        photos = predict_photos(opened, inputs, detector_settings(config, detector), top=top)
        print_photos(photos, as_json, f"{opened.spec} ({opened.quantization}, {opened.runner.backend})")
        return
    if detector is not None or config is not None:
        raise EdgeemoError("--detector and --config go with --detect (whole photos)")
    if opened.task == "face":
        results = predict_images(opened, inputs, top=top)
    else:
        results = predict_clips(opened, inputs, top=top)
    if as_json:
        for r in results:
            print(json.dumps({k: r[k] for k in (key, "label", "score", "probs")}))
        return
    print_wide(Console(), predictions_table(opened, results, top))
