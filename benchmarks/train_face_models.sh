#!/usr/bin/env bash
# Release step: train and export the shipped face models (CPU hours on a 2-core machine;
# minutes on a GPU). Every step resumes where it stopped: re-run after an interruption.
#
#   bash benchmarks/train_face_models.sh
set -euo pipefail
cd "$(dirname "$0")/.."
E=.venv/bin/edgeemo
FER=../shared/data/fer2013

# Custom CNN on FER2013 train/ (10% of it for validation), PublicTest held out.
$E train face --data "$FER" --out runs/fer-custom-cnn --arch custom-cnn --epochs 40

# Export: float parents + full-int8 TFLite + int8 QDQ ONNX, verified on PublicTest.
$E export runs/fer-custom-cnn --quantize int8 --format tflite,onnx --name face --out runs/export-face
mkdir -p edgeemo/models/face
for f in face-float.tflite face-int8.tflite face-int8.onnx; do
    cp "runs/export-face/$f" "runs/export-face/$f.json" edgeemo/models/face/
done

# Training curves and test metrics of the run, kept with the results.
mkdir -p benchmarks/results/training
cp runs/fer-custom-cnn/curves.png benchmarks/results/training/fer-custom-cnn-curves.png
cp runs/fer-custom-cnn/history.csv benchmarks/results/training/fer-custom-cnn-history.csv
cp runs/fer-custom-cnn/metrics.json benchmarks/results/training/fer-custom-cnn-metrics.json
