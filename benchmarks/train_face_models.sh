# Release step: train and export the shipped face models (CPU hours on a 2-core machine, about
# half as many with --precision auto in mixed_bfloat16 where the CPU has AMX-BF16;
# minutes on a GPU). Every step resumes where it stopped: re-run after an interruption.
# The shipped model (2026-12-01) is exactly these commands: stage 1 and 2 in mixed_bfloat16
# (the auto default on this AMX CPU), then BatchNorm recalibration. The previous shipped model
# (63.53% int8) was stage 1 + 2 in float32 without recalibration (runs fer-custom-cnn and
# fer-custom-cnn-ft in results/training/; results/face_accuracy_attempts.md).
#
#   bash benchmarks/train_face_models.sh
set -euo pipefail
cd "$(dirname "$0")/.."
E=.venv/bin/edgeemo
FER=../shared/data/fer2013

# Custom CNN on FER2013 train/ (10% of it for validation), PublicTest held out.
$E train face --data "$FER" --out runs/fer-custom-cnn-bf16 --arch custom-cnn --epochs 40

# Stage 2: fine-tune from the best stage-1 weights with lighter regularisation (stage 1
# underfit: train accuracy with augmentation ~= validation accuracy when its LR bottomed out).
$E train face --data "$FER" --out runs/fer-custom-cnn-bf16-ft --init-from runs/fer-custom-cnn-bf16/best.keras \
    --lr 3e-4 --dropout 0.3 --block-dropout 0.1 --shift 0.08 --zoom 0.08 --brightness 0.1 --contrast 0.1 \
    --noise 0 --epochs 16 --patience 5

# Stage 3: BatchNorm statistics re-measured on un-augmented training faces without dropout
# (same weights and size; +1.3 points validation, +1.5 test, measured).
[ -f runs/fer-custom-cnn-bf16-ft-bn/finished.json ] || \
    $E train recalibrate runs/fer-custom-cnn-bf16-ft --out runs/fer-custom-cnn-bf16-ft-bn

# Export: float parents + full-int8 TFLite + int8 QDQ ONNX, verified on PublicTest.
$E export runs/fer-custom-cnn-bf16-ft-bn --quantize int8 --format tflite,onnx --name face --out runs/export-face
mkdir -p edgeemo/models/face
for f in face-float.tflite face-int8.tflite face-float.onnx face-int8.onnx; do
    cp "runs/export-face/$f" "runs/export-face/$f.json" edgeemo/models/face/
done

# Training curves and test metrics of the run, kept with the results.
mkdir -p benchmarks/results/training
for run in fer-custom-cnn-bf16 fer-custom-cnn-bf16-ft; do
    for f in curves.png history.csv metrics.json config.json; do
        cp "runs/$run/$f" "benchmarks/results/training/$run-$f"
    done
done
# The recalibrated run trained no further: its history and curves are fer-custom-cnn-bf16-ft's.
for f in metrics.json config.json; do
    cp "runs/fer-custom-cnn-bf16-ft-bn/$f" "benchmarks/results/training/fer-custom-cnn-bf16-ft-bn-$f"
done
