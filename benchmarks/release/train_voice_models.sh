#!/usr/bin/env bash
# Release step: train, export and ship the voice model (edgeemo/models/voice/), then benchmark it.
# The shipped model is an ensemble (mean of softmax) of two runs; how they were chosen among
# eight candidates by validation accuracy is in results/voice_augmentation_runs.md.
# Training on CPU (2 cores): per run ~10-15 min of MFCC features (+ augmented copies), ~10-20 min of training.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-../shared/data}
COMMON=(--data "$DATA/ravdess" --test-speakers 17,18,19,20 --epochs 60)  # defaults: pitch ±4, patience 15
.venv/bin/edgeemo train voice "${COMMON[@]}" --out runs/voice-ravdess-crnn-aug8 --arch crnn  # 8 copies
.venv/bin/edgeemo train voice "${COMMON[@]}" --out runs/voice-ravdess-conv1d-aug12 --arch conv1d --aug-copies 12
.venv/bin/edgeemo train ensemble runs/voice-ravdess-crnn-aug8 runs/voice-ravdess-conv1d-aug12 \
  --out runs/voice-ravdess-ensemble
.venv/bin/edgeemo export runs/voice-ravdess-ensemble --out runs/export-voice-ensemble --name voice
mkdir -p edgeemo/models/voice
for f in voice-float.tflite voice-int8.tflite voice-float.onnx voice-int8.onnx; do
  cp "runs/export-voice-ensemble/$f" "runs/export-voice-ensemble/$f.json" edgeemo/models/voice/
done
.venv/bin/python benchmarks/suite/voice_heldout.py
