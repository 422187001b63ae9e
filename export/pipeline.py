"""``edgeemo export``: a training run -> float + quantised TFLite/ONNX files, each verified,
each with a manifest.

For every format the float parent (``<name>-float.<ext>``) is written first, then the
quantised child (``<name>-int8.<ext>`` or ``-float16``), which is checked against the
parent on the run's held-out TEST faces through the same runtime the device uses. A
child more than ``max_drop`` accuracy points below its parent is removed and the
export fails (unless ``force``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from edgeemo.errors import EdgeemoError
from edgeemo.export.calibration import SEED, ExportSource, Samples, export_samples, resolve_source
from edgeemo.export.verify import (
    MAX_DROP_BY_TASK,
    accuracy_report,
    check_gate,
    compare,
    gate_passed,
    latency_ms,
    predict_file,
)
from edgeemo.manifest import Manifest, write_manifest
from edgeemo.runtime import open_model

LAYOUT = {"face": "NHWC", "voice": "NTC (frames, MFCC coefficients)",
          "voice-functionals": "NTC (1, utterance functionals of the MFCC coefficients)"}

QUANTIZE = ("int8", "float16", "none")
FORMATS = ("tflite", "onnx")
ONNX_ACTIVATIONS = ("auto", "uint8", "int8")
TIE = 0.05  # ONNX activation types whose p50 latencies differ by less than this are a tie
TFLITE_CONVERTER = "tf.function endpoint (Keras ExportArchive SavedModel) -> TFLiteConverter"


def _check_options(quantize: str, formats: Sequence[str], onnx_activations: str, name: str | None) -> list[str]:
    if quantize not in QUANTIZE:
        raise EdgeemoError(f"unknown --quantize {quantize!r} (expected int8, float16 or none)")
    fmts = [f.strip().lower() for f in formats if f.strip()]
    bad = [f for f in fmts if f not in FORMATS]
    if bad or not fmts:
        raise EdgeemoError(f"unknown --format {','.join(bad) or '(empty)'} (expected tflite, onnx or tflite,onnx)")
    if onnx_activations not in ONNX_ACTIVATIONS:
        raise EdgeemoError(f"unknown --onnx-activations {onnx_activations!r} (expected auto, uint8 or int8)")
    if name is not None and (not name or "/" in name or "\\" in name or name.startswith(".")):
        raise EdgeemoError(f"--name must be a plain file name prefix, got {name!r}")
    return list(dict.fromkeys(fmts))


def float32_model(model: Any) -> tuple[Any, str | None]:
    """The model with float32 layers: a mixed-precision (GPU-trained) model is rebuilt from its
    config with every ``mixed_*`` dtype policy set to float32 and the same weights (which are
    float32 already). Returns (model, the mixed policy found or None)."""
    layers = model._flatten_layers(include_self=False)
    mixed = sorted({p for layer in layers if (p := str(layer.dtype_policy.name)).startswith("mixed")})
    if not mixed:
        return model, None

    def strip(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        return "float32" if isinstance(obj, str) and obj.startswith("mixed_") else obj

    clone = model.__class__.from_config(strip(model.get_config()))
    clone.set_weights(model.get_weights())
    return clone, mixed[0]


def load_keras(source: ExportSource) -> Any:
    """Load the Keras model and check it against the run's preprocessing and labels."""
    import keras

    path = source.model_path
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # keras raises many types for a bad file
        raise EdgeemoError(f"not a loadable Keras model ({' '.join(str(exc).split())[:200]})", path) from None
    pre = source.preprocessing
    shape = tuple(model.inputs[0].shape[1:]) if len(model.inputs) == 1 else None
    expected = pre.input_shape
    if shape != tuple(expected):
        raise EdgeemoError(f"model input {shape} does not match the preprocessing {tuple(expected)}", path)
    classes = model.outputs[0].shape[-1]
    if classes != len(source.labels):
        raise EdgeemoError(f"model predicts {classes} classes but the run has {len(source.labels)} labels", path)
    model, mixed = float32_model(model)
    if mixed:
        source.notes.append(f"trained with the {mixed} policy; exported with float32 layers")
    return model


def io_spec(path: Path, task: str = "face", summary: str = "frames") -> tuple[dict[str, Any], dict[str, Any]]:
    """Input and output tensor descriptions of a written model file, for its manifest (``summary``:
    a voice model's ``VoicePreprocessing.summary``)."""
    runner = open_model(path)

    def describe(spec: Any, layout: str) -> dict[str, Any]:
        d: dict[str, Any] = {"shape": list(spec.shape), "dtype": spec.dtype, "layout": layout}
        if spec.scale is not None:
            d.update(scale=spec.scale, zero_point=spec.zero_point)
        return d

    layout = LAYOUT["voice-functionals" if task == "voice" and summary == "functionals" else task]
    return describe(runner.input, layout), describe(runner.output, "NC (class probabilities)")


def training_info(source: ExportSource, model: Any) -> dict[str, Any]:
    """What the manifest says about training: arch, params, data, split, run test accuracy."""
    config, metrics = source.config, source.run_metrics
    info: dict[str, Any] = {
        "arch": config.get("arch", model.name),
        "params": int(model.count_params()),
        "data": config.get("data", None if source.data is None else str(source.data)),
        "test_data": config.get("test_data"),
        "split": config.get("split", {}),
        "run": None if source.run_dir is None else str(source.run_dir),
        "keras_file": source.model_path.name,
    }
    if metrics:
        info["test_accuracy"] = metrics.get("accuracy")
        info["test_macro_f1"] = metrics.get("macro_f1")
        info["test_n"] = metrics.get("n")
    if config.get("settings"):
        info["epochs"] = config["settings"].get("epochs")
    for key in ("augmentation", "camera_augmentation", "channel_augmentation", "balance", "extra_train",
                "exclude_speakers", "distribution", "data_pipeline"):  # how it trained, beyond the split
        if config.get(key):
            info[key] = config[key]
    if config.get("ensemble"):  # edgeemo train ensemble: members, their options and validation accuracy
        info["ensemble"] = config["ensemble"]
    # how the weights came to be
    for key in ("init_from", "distillation", "weight_average", "batchnorm_recalibration", "resumes"):
        if config.get(key):
            info[key] = config[key]
    if source.notes:
        info["notes"] = list(source.notes)
    return info


class _Exporter:
    """State shared by the per-format steps of one export."""

    def __init__(
        self,
        source: ExportSource,
        model: Any,
        calib: Samples,
        verify: Samples,
        out: Path,
        name: str,
        force: bool,
        max_drop: float,
        console: Console,
    ) -> None:
        self.source, self.model, self.calib, self.verify = source, model, calib, verify
        self.out, self.name, self.force, self.max_drop, self.console = (
            out,
            name,
            force,
            max_drop,
            console,
        )
        self.labels = source.labels
        self.unit = "faces" if source.task == "face" else "clips"
        # Keras 3 LSTMs convert to full-integer TFLite only unrolled (same weights, same maths);
        # both TFLite files come from that copy so parent and child are the same graph.
        from edgeemo.export.tflite import unrolled

        self.tflite_model = unrolled(model)
        self.training = training_info(source, model)
        self.keras_probs = np.asarray(model.predict(verify.x, batch_size=256, verbose=0), np.float32)
        self.rows: list[dict[str, Any]] = []
        self.notes: list[str] = list(source.notes)

    # --- manifests -------------------------------------------------------------------
    def calibration_info(self) -> dict[str, Any]:
        return {
            "n": len(self.calib),
            "source": self.calib.description,
            "class_balanced": self.calib.class_balanced,
            "classes": self.calib.class_counts(self.labels),
            "seed": SEED,
        }

    def write(self, path: Path, fmt: str, quantization: dict[str, Any], metrics: dict[str, Any]) -> None:
        inp, outp = io_spec(path, self.source.task, getattr(self.source.preprocessing, "summary", "frames"))
        manifest = Manifest(
            task=self.source.task,
            labels=list(self.labels),
            model_file=path.name,
            format=fmt,
            sha256="",
            size_bytes=0,
            input=inp,
            output=outp,
            preprocessing=self.source.preprocessing.to_dict(),
            quantization=quantization,
            training=self.training,
            metrics=metrics,
            name=path.stem,
        )
        write_manifest(manifest, path)

    def verify_info(self) -> dict[str, Any]:
        return {
            "split": "test" if self.source.run_dir is not None else "verify",
            "source": self.verify.description,
        }

    # --- float parent ----------------------------------------------------------------
    def float_parent(self, fmt: str) -> tuple[Path, np.ndarray]:
        from edgeemo.export.onnx import convert_onnx
        from edgeemo.export.tflite import write_tflite

        path = self.out / f"{self.name}-float.{fmt}"
        self.console.print(f"converting float {fmt}: {path}")
        t0 = time.time()
        if fmt == "tflite":
            write_tflite(self.tflite_model, path, "none")
            quant: dict[str, Any] = {
                "mode": "none",
                "converter": TFLITE_CONVERTER,
            }
            if self.tflite_model is not self.model:
                quant["recurrent"] = "LSTM layers unrolled over the fixed number of frames (same weights)"
        else:
            from edgeemo.export.onnx import OPSET

            convert_onnx(self.model, path)
            quant = {"mode": "none", "converter": f"tf2onnx from a tf.function, opset {OPSET}"}
        seconds = time.time() - t0
        self.write(path, fmt, quant, {})
        probs = predict_file(path, self.verify.x)
        report = accuracy_report(self.verify.y, probs, self.labels)
        agreement = float(np.mean(probs.argmax(1) == self.keras_probs.argmax(1)))
        max_diff = float(np.abs(probs - self.keras_probs).max())
        metrics = {
            **self.verify_info(),
            **report,
            "vs_keras": {"top1_agreement": agreement, "max_abs_prob_diff": max_diff},
            "convert_seconds": round(seconds, 2),
        }
        if agreement < 0.99:
            self.console.print(
                f"[yellow]warning:[/yellow] {path.name} agrees with the Keras model on only "
                f"{agreement:.1%} of {self.unit}"
            )
        self.write(path, fmt, quant, metrics)
        self.rows.append(
            {
                "file": str(path),
                "format": fmt,
                "quantization": "none",
                "size_bytes": path.stat().st_size,
                "accuracy": report["accuracy"],
                "top1_agreement": agreement,
                "reference": "keras",
            }
        )
        return path, probs

    # --- quantised child -------------------------------------------------------------
    def finish_child(
        self,
        path: Path,
        fmt: str,
        mode: str,
        quant: dict[str, Any],
        probs_float: np.ndarray,
        parent: Path,
    ) -> dict[str, Any]:
        """Manifest, verification against the float parent, accuracy gate."""
        quant = {**quant, "mode": mode, "parent": {"file": parent.name, "sha256": _sha(parent)}}
        self.write(path, fmt, quant, {})
        probs = predict_file(path, self.verify.x)
        metrics = {**self.verify_info(), **compare(self.verify.y, probs_float, probs, self.labels)}
        if not gate_passed(metrics, self.max_drop) and not self.force:
            path.unlink(missing_ok=True)
            path.with_name(path.name + ".json").unlink(missing_ok=True)
        passed = check_gate(metrics, path, self.max_drop, self.force)  # raises unless forced
        if not passed:
            self.console.print(
                f"[yellow]warning:[/yellow] {path.name}: accuracy "
                f"{metrics['accuracy_quantized']:.2%} is "
                f"{metrics['accuracy_drop_points']:.2f} points below float "
                f"{metrics['accuracy_float']:.2%}; kept because of --force"
            )
        self.write(path, fmt, quant, metrics)
        self.rows.append(
            {
                "file": str(path),
                "format": fmt,
                "quantization": mode,
                "size_bytes": path.stat().st_size,
                "accuracy": metrics["accuracy_quantized"],
                "accuracy_float": metrics["accuracy_float"],
                "top1_agreement": metrics["top1_agreement"],
                "reference": parent.name,
                "forced": metrics["forced"],
            }
        )
        return metrics

    def tflite_child(self, mode: str, parent: Path, probs_float: np.ndarray) -> None:
        from edgeemo.export.tflite import write_tflite

        path = self.out / f"{self.name}-{mode}.tflite"
        self.console.print(
            f"converting {mode} tflite"
            + (f" ({len(self.calib)} calibration {self.unit})" if mode == "int8" else "")
            + f": {path}"
        )
        write_tflite(self.tflite_model, path, mode, self.calib.x if mode == "int8" else None)
        quant: dict[str, Any] = {"converter": TFLITE_CONVERTER}
        if self.tflite_model is not self.model:
            quant["recurrent"] = "LSTM layers unrolled over the fixed number of frames (same weights)"
        if mode == "int8" and self.source.task == "voice":
            inp, _ = io_spec(path, "voice")
            quant.update(
                scheme="full integer: int8 weights (per-channel), int8 activations, int8 I/O"
                + (" (LSTM unrolled into int8 FullyConnected/elementwise ops)" if "recurrent" in quant else ""),
                supported_ops="TFLITE_BUILTINS_INT8",
                calibration=self.calibration_info(),
                input_quantization={
                    "scale": inp["scale"],
                    "zero_point": inp["zero_point"],
                    "note": f"standardised MFCC {self.source.preprocessing.summary} (range from calibration); "
                            "values beyond it saturate",
                },
            )
        elif mode == "int8":
            inp, _ = io_spec(path)
            pre = self.source.preprocessing
            expected_zp = -128 - int(round(pre.offset / pre.scale))
            lossless = bool(np.isclose(inp["scale"], pre.scale, rtol=1e-4) and inp["zero_point"] == expected_zp)
            quant.update(
                scheme="full integer: int8 weights (per-channel), int8 activations, int8 I/O",
                supported_ops="TFLITE_BUILTINS_INT8",
                calibration=self.calibration_info(),
                input_quantization={
                    "scale": inp["scale"],
                    "zero_point": inp["zero_point"],
                    "expected_scale": pre.scale,
                    "expected_zero_point": expected_zp,
                    "lossless": lossless,
                },
            )
            if not lossless:
                self.console.print(
                    f"[yellow]warning:[/yellow] {path.name}: int8 input scale {inp['scale']:.6g} / "
                    f"zero point {inp['zero_point']} differ from the lossless {pre.scale:.6g} / "
                    f"{expected_zp} "
                    "(the calibration faces do not span the full pixel range)"
                )
        else:
            quant.update(scheme="float16 weights, float32 input/output (dequantised at load on CPU)")
        self.finish_child(path, "tflite", mode, quant, probs_float, parent)

    def onnx_dynamic_child(
        self, path: Path, parent: Path, probs_float: np.ndarray, recurrent: list[str]
    ) -> None:
        """Recurrent graphs: static QDQ would leave the LSTM nodes float, so dynamic quantisation
        (int8 weights incl. the LSTM's, activations quantised at run time) is used, and said."""
        from edgeemo.export.onnx import quantize_onnx_dynamic

        note = (
            f"graph has recurrent nodes ({', '.join(recurrent)}): static QDQ would leave them float, so dynamic "
            "quantisation is used (int8 weights incl. LSTM, uint8 activations quantised at run time)"
        )
        self.console.print(f"[yellow]note:[/yellow] {note}")
        self.notes.append(note)
        info = quantize_onnx_dynamic(parent, path)
        lat = latency_ms([parent, path], self.verify.x)
        quant = {**info, "recurrent_nodes": recurrent, "note": note, "latency_ms": lat, "measured_on": _cpu_name()}
        self.finish_child(path, "onnx", "int8", quant, probs_float, parent)

    def onnx_child(self, activations: str, parent: Path, probs_float: np.ndarray) -> None:
        from edgeemo.export.onnx import quantize_onnx, recurrent_ops

        path = self.out / f"{self.name}-int8.onnx"
        recurrent = recurrent_ops(parent)
        if recurrent:
            self.onnx_dynamic_child(path, parent, probs_float, recurrent)
            return
        candidates = ["uint8", "int8"] if activations == "auto" else [activations]
        files = {a: self.out / f".{self.name}-int8-{a}.candidate.onnx" for a in candidates}
        measured: dict[str, dict[str, Any]] = {}
        infos: dict[str, dict[str, Any]] = {}
        try:
            for act, file in files.items():
                self.console.print(f"quantizing onnx, {act} activations ({len(self.calib)} calibration {self.unit})")
                infos[act] = quantize_onnx(parent, file, self.calib.x, act)
                m = compare(self.verify.y, probs_float, predict_file(file, self.verify.x), self.labels)
                measured[act] = {
                    "accuracy": m["accuracy_quantized"],
                    "accuracy_drop_points": m["accuracy_drop_points"],
                    "top1_agreement": m["top1_agreement"],
                    "passes_gate": gate_passed(m, self.max_drop),
                }
            self.console.print("measuring batch-1 latency (1 thread, interleaved)")
            lat = latency_ms([parent, *files.values()], self.verify.x)
            float_latency = lat.pop(str(parent))
            for act, file in files.items():
                measured[act].update(lat[str(file)])
            if len(candidates) > 1:
                chosen, reason = choose_activations(measured)
            else:
                chosen, reason = candidates[0], "requested"
            files[chosen].replace(path)
        finally:
            for file in files.values():
                file.unlink(missing_ok=True)
        for act in candidates:
            self.console.print(
                f"  {act:5s} activations: accuracy {measured[act]['accuracy']:.2%}, "
                f"p50 {measured[act]['p50_ms']:.3f} ms"
                f" (float {float_latency['p50_ms']:.3f} ms){'  <- kept' if act == chosen else ''}"
            )
        quant = {
            **infos[chosen],
            "calibration": self.calibration_info(),
            "activation_selection": {
                "mode": activations,
                "chosen": chosen,
                "reason": reason,
                "candidates": measured,
                "float_parent_latency": float_latency,
                "measured_on": _cpu_name(),
            },
        }
        self.finish_child(path, "onnx", "int8", quant, probs_float, parent)


def choose_activations(measured: dict[str, dict[str, Any]], tie: float = TIE) -> tuple[str, str]:
    """Pick the ONNX activation type from {type: {p50_ms, accuracy, passes_gate}}.

    The faster one (batch-1 p50) of those passing the accuracy gate. p50s within ``tie``
    (relative) are a tie, which run-to-run noise could flip: then the more accurate one,
    then int8 (S8S8, the symmetric scheme ARM CPUs such as the Pi's prefer). If none
    passes, the more accurate one (the gate then fails unless --force).
    """
    passing = [a for a in measured if measured[a]["passes_gate"]]
    if not passing:
        best = max(measured, key=lambda a: measured[a]["accuracy"])
        return best, "none passed the accuracy gate; the more accurate one"
    fastest = min(measured[a]["p50_ms"] for a in passing)
    close = [a for a in passing if measured[a]["p50_ms"] <= fastest * (1 + tie)]
    if len(close) == 1:
        return close[0], "faster batch-1 p50 of those passing the accuracy gate"
    best = max(close, key=lambda a: (measured[a]["accuracy"], a == "int8"))
    return best, (
        f"batch-1 p50s within {tie:.0%} (a tie on this CPU): the more accurate, then int8 (S8S8, preferred on ARM)"
    )


def _sha(path: Path) -> str:
    from edgeemo.manifest import sha256_of

    return sha256_of(path)


def _cpu_name() -> str:
    import platform

    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    model = next(
        (ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")),
        platform.machine(),
    )
    vnni = " (AVX512-VNNI)" if "avx512_vnni" in info else (" (AVX-VNNI)" if "avx_vnni" in info else "")
    return f"{model}{vnni}, {os.cpu_count()} cores"


def export_run(
    source: str | Path,
    out: str | Path,
    quantize: str = "int8",
    formats: Sequence[str] = FORMATS,
    name: str | None = None,
    calib_size: int = 500,
    verify_size: int | None = None,
    force: bool = False,
    onnx_activations: str = "auto",
    data: str | Path | None = None,
    dataset: str = "auto",
    verify_data: str | Path | None = None,
    limit_per_class: int | None = None,
    max_drop: float | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Export a run folder (or .keras file) to float + quantised TFLite/ONNX, verified.

    Returns a summary: {"name", "out", "files": [{file, format, quantization, size_bytes,
    accuracy, top1_agreement, ...}], "calibration", "verification", "notes"}. Raises
    EdgeemoError for bad input and for a quantised model that fails the accuracy gate.
    """
    console = console or Console(stderr=True)
    fmts = _check_options(quantize, formats, onnx_activations, name)
    src = resolve_source(source, data, dataset, verify_data, limit_per_class)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise EdgeemoError("--out must be a folder", out)
    name = name or (src.run_dir.name if src.run_dir is not None else src.model_path.stem)
    if max_drop is None:
        max_drop = MAX_DROP_BY_TASK[src.task]
    model = load_keras(src)
    for note in src.notes:
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    t0 = time.time()
    calib, verify = export_samples(src, calib_size, verify_size)
    console.print(
        f"calibration: {len(calib)} samples ({calib.description}); verification: {len(verify)} samples "
        f"({verify.description}) [{time.time() - t0:.1f}s]"
    )
    out.mkdir(parents=True, exist_ok=True)
    # Manifests left by an earlier export into this folder describe the old files: the runtime
    # would (rightly) refuse each new file against the old sha256 while it is being verified.
    for fmt in fmts:
        for kind in ("float", "int8" if fmt == "onnx" else quantize):
            (out / f"{name}-{kind}.{fmt}.json").unlink(missing_ok=True)
    exporter = _Exporter(src, model, calib, verify, out, name, force, max_drop, console)
    for fmt in fmts:
        parent, probs_float = exporter.float_parent(fmt)
        if quantize == "none":
            continue
        if fmt == "tflite":
            exporter.tflite_child(quantize, parent, probs_float)
        elif quantize == "float16":
            note = (
                "ONNX float16 skipped: onnxruntime's CPU provider gains nothing from float16; "
                "use the float or int8 ONNX"
            )
            console.print(f"[yellow]note:[/yellow] {note}")
            exporter.notes.append(note)
        else:
            exporter.onnx_child(onnx_activations, parent, probs_float)
    return {
        "name": name,
        "out": str(out),
        "files": exporter.rows,
        "calibration": exporter.calibration_info(),
        "verification": {**exporter.verify_info(), "n": len(verify)},
        "keras_accuracy": accuracy_report(verify.y, exporter.keras_probs, src.labels)["accuracy"],
        "notes": exporter.notes,
    }


def summary_table(summary: dict[str, Any]) -> Table:
    """A rich table of the written files: size, accuracy, top-1 agreement with the reference."""
    table = Table(
        title=f"{summary['out']}: verified on {summary['verification']['n']} held-out samples",
        caption="agreement: same top-1 class as the float parent (float files: as the Keras model)",
    )
    table.add_column("file", no_wrap=True)
    for col in ("size", "accuracy", "vs float", "agreement"):
        table.add_column(col, justify="right", no_wrap=True)
    for row in summary["files"]:
        delta = ""
        if "accuracy_float" in row:
            delta = f"{100 * (row['accuracy'] - row['accuracy_float']):+.2f} pt"
            delta += " (forced)" if row.get("forced") else ""
        table.add_row(
            Path(row["file"]).name,
            f"{row['size_bytes'] / 1024:,.0f} KiB",
            f"{row['accuracy']:.2%}",
            delta,
            f"{row['top1_agreement']:.2%}",
        )
    return table
