"""`edgeemo export`: float + quantized TFLite/ONNX, verified, with manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from edgeemo.cli.app import app, clean_errors, err


@app.command("export")
@clean_errors
def export_cmd(
    source: Annotated[
        Path,
        typer.Argument(
            help="A training run folder (uses its best.keras, config.json, split.json) or a .keras file.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the model files, each with its manifest <file>.json. Default: exported/ in the run "
            "folder (beside a .keras file).",
            show_default=False,
        ),
    ] = None,
    quantize: Annotated[
        str,
        typer.Option(
            help="int8 (full integer, int8 input/output in TFLite), float16 (TFLite only) or "
            "none. The float parents <name>-float.* are always written too."
        ),
    ] = "int8",
    formats: Annotated[str, typer.Option("--format", help="Comma-separated formats: tflite, onnx.")] = "tflite,onnx",
    name: Annotated[
        str | None,
        typer.Option(help="File name prefix (<name>-int8.tflite...). Default: the run folder's name."),
    ] = None,
    calib_size: Annotated[
        int,
        typer.Option(min=1, help="Calibration faces: a class-balanced sample of the train split."),
    ] = 500,
    verify_size: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Verify on about N class-stratified test faces. Default: the whole test split.",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Keep a quantized model that loses more than --max-drop accuracy points "
            "against its float parent (recorded as forced in its manifest).",
        ),
    ] = False,
    max_drop: Annotated[
        float | None,
        typer.Option(min=0.0, help="Accuracy gate: most points a quantized model may lose. Default: 1.0 for face "
                     "models, 1.5 for voice models (their held-out sets are ~10x smaller)."),
    ] = None,
    onnx_activations: Annotated[
        str,
        typer.Option(
            help="ONNX activation type: uint8 (U8S8), int8 (S8S8), or auto: build both, "
            "measure accuracy and batch-1 latency on this CPU, keep the faster one that "
            "passes the accuracy gate."
        ),
    ] = "auto",
    data: Annotated[
        Path | None,
        typer.Option(
            help="Face data. Needed for a bare .keras file (calibration from its train/, "
            "verification from publictest/ or --verify-data); for a run it replaces the "
            "data folder recorded in config.json (e.g. when moved)."
        ),
    ] = None,
    dataset: Annotated[str, typer.Option(help="auto, fer2013 or ckplus (with --data).")] = "auto",
    verify_data: Annotated[
        Path | None,
        typer.Option(help="Held-out faces for a bare .keras file (or a run's separate test set)."),
    ] = None,
    limit_per_class: Annotated[
        int | None,
        typer.Option(min=1, help="Read only the first N faces per class of --data (quick runs)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON instead of a table.")] = False,
) -> None:
    """Export a trained model to float + quantized TFLite/ONNX, each verified and with a manifest.

    Calibrates on the run's train split and checks every quantized model against its
    float parent on the run's held-out test split through the device runtimes. Fails
    (and removes the file) when a quantized model loses more than --max-drop accuracy
    points, unless --force. Needs TensorFlow, tf2onnx and onnxruntime (the export extra).

    Example: edgeemo export runs/fer-custom-cnn --quantize int8 --format tflite,onnx
    --out models/face
    """
    import json

    from edgeemo.export.pipeline import export_run, summary_table

    if out is None:
        out = (source if source.is_dir() else source.parent) / "exported"
    summary = export_run(
        source,
        out,
        quantize=quantize,
        formats=formats.split(","),
        name=name,
        calib_size=calib_size,
        verify_size=verify_size,
        force=force,
        onnx_activations=onnx_activations,
        data=data,
        dataset=dataset,
        verify_data=verify_data,
        limit_per_class=limit_per_class,
        max_drop=max_drop,
        console=err,
    )
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        Console().print(summary_table(summary))


