#!/usr/bin/env bash
# Release step: train, export and ship the voice model (edgeemo/models/voice/), then benchmark it.
# Training on CPU (2 cores): ~10 min of MFCC features (+8 augmented copies per clip), ~10 min of training.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
RUN=runs/voice-ravdess-conv1d-aug8
.venv/bin/edgeemo train voice --data "$DATA/ravdess" --out "$RUN" --arch conv1d \
  --test-speakers 17,18,19,20 --epochs 60  # defaults: 8 augmented copies, pitch ±4, patience 15
.venv/bin/edgeemo export "$RUN" --out runs/export-voice-ravdess-conv1d --name voice
mkdir -p edgeemo/models/voice
for f in voice-float.tflite voice-int8.tflite voice-int8.onnx; do
  cp "runs/export-voice-ravdess-conv1d/$f" "runs/export-voice-ravdess-conv1d/$f.json" edgeemo/models/voice/
done
.venv/bin/python benchmarks/voice_heldout.py
