"""`edgeemo bench` and `edgeemo predict`: the device runtimes only, never TensorFlow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from edgeemo.cli.app import app, clean_errors, err


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
        typer.Option(help="Folder for confusion-<model>.png. Default: the folder of --json, else the current folder."),
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
    backend: Annotated[
        str,
        typer.Option(help="auto (by file type), litert or tflite-runtime (.tflite), onnxruntime (.onnx)."),
    ] = "auto",
) -> None:
    """Compare models on labelled faces or voice clips: accuracy, macro-F1, UAR, per-class P/R/F1,
    latency, size, memory.

    Every model gets the preprocessing from its own manifest. Prints the models side by
    side, writes a confusion-matrix PNG per model and, with --json, the whole report.
    Only LiteRT / onnxruntime are loaded, unless a .keras model is given.

    Example: edgeemo bench face-float face face-onnx --data ../shared/data/fer2013
    --json bench/fer2013.json

    Voice: edgeemo bench voice voice-float --data ../shared/data/ravdess --speakers 17,18,19,20
    """
    from edgeemo.bench import run_bench
    from edgeemo.report import render_table, write_json, write_plots

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
    )
    render_table(report, Console())
    if json_path is not None:
        err.print(f"wrote {write_json(report, json_path)}", highlight=False)
    if plots:
        out_dir = plot_dir or (json_path.parent if json_path is not None else Path.cwd())
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
    output. Images should be cropped faces (`edgeemo demo` finds a face in a photo);
    a clip without speech is reported as "no speech", not guessed.

    Example: edgeemo predict face happy.jpg sad.png --json; edgeemo predict voice clip.wav
    """
    import json

    from rich.table import Table

    from edgeemo.predict import open_emotion_model, predict_clips, predict_images
    from edgeemo.report import print_wide

    opened = open_emotion_model(model, backend=backend, threads=threads)
    for note in opened.notes:
        err.print(f"[yellow]note:[/] {note}", highlight=False)
    key = "image" if opened.task == "face" else "clip"
    if opened.task == "face":
        results = predict_images(opened, inputs, top=top)
    else:
        results = predict_clips(opened, inputs, top=top)
    if as_json:
        for r in results:
            print(json.dumps({k: r[k] for k in (key, "label", "score", "probs")}))
        return
    runner = opened.runner
    table = Table(title=f"{opened.spec} ({opened.quantization}, {runner.backend})")
    for col in (key, "emotion", "p", f"top {top}"):
        table.add_column(col)
    for r in results:
        top_text = ", ".join(f"{k} {v:.2f}" for k, v in r["top"])
        table.add_row(r[key], r["label"], f"{r['score']:.2f}", top_text)
    print_wide(Console(), table)

