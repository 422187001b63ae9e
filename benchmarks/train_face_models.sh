# Release step: train and export the shipped face models (CPU hours on a 2-core machine, about
# fewer with --precision auto in mixed_bfloat16 where the CPU has AMX-BF16 or AVX512-BF16;
# minutes on a GPU). Every step resumes where it stopped: re-run after an interruption.
# The shipped model (2026-12-02, 67.04% int8) is one 80-epoch cosine run in mixed_bfloat16 (the
# auto default on this AMX CPU) with the stage-1 regularisation, then BatchNorm recalibration.
# The run was planned over 120 epochs and re-planned twice to fit the sessions: its cosine
# span was 120 epochs for epochs 1-48, 100 for 49-55 and 80 for 56-80 (config.json "resumes"),
# so the command below is the plan it ended on, not a replay of those three legs.
# Earlier shipped models (65.92%: 40-epoch stage 1 + 16-epoch fine-tune + recalibration;
# 63.53%: the same in float32 without recalibration) are in results/face_accuracy_attempts.md
# and results/training/.
#
#   bash benchmarks/train_face_models.sh
set -euo pipefail
cd "$(dirname "$0")/.."
E=.venv/bin/edgeemo
FER=../shared/data/fer2013

# Custom CNN on FER2013 train/ (10% of it for validation: the split of seed 0), PublicTest held out.
$E train face --data "$FER" --out runs/fer-custom-cnn-cos120 --arch custom-cnn --seed 1 --split-seed 0 \
    --lr 1e-3 --schedule cosine --epochs 80 --patience 120

# BatchNorm statistics re-measured on un-augmented training faces without dropout (same weights
# and size). On this run validation accuracy moved 66.02% -> 65.95% (2 faces) while validation
# macro-F1 and NLL improved (0.632 -> 0.635, 0.965 -> 0.938), so it is kept with --keep-worse
# (results/face_accuracy_attempts.md).
[ -f runs/fer-custom-cnn-cos120-bn/finished.json ] || \
    $E train recalibrate runs/fer-custom-cnn-cos120 --out runs/fer-custom-cnn-cos120-bn --keep-worse

# Export: float parents + full-int8 TFLite + int8 QDQ ONNX, verified on PublicTest.
$E export runs/fer-custom-cnn-cos120-bn --quantize int8 --format tflite,onnx --name face --out runs/export-face
mkdir -p edgeemo/models/face
for f in face-float.tflite face-int8.tflite face-float.onnx face-int8.onnx; do
    cp "runs/export-face/$f" "runs/export-face/$f.json" edgeemo/models/face/
done

# Training curves and test metrics of the run, kept with the results.
mkdir -p benchmarks/results/training
for run in fer-custom-cnn-cos120; do
    for f in curves.png history.csv metrics.json config.json; do
        cp "runs/$run/$f" "benchmarks/results/training/$run-$f"
    done
done
# The recalibrated run trained no further: its history and curves are fer-custom-cnn-cos120's.
for f in metrics.json config.json; do
    cp "runs/fer-custom-cnn-cos120-bn/$f" "benchmarks/results/training/fer-custom-cnn-cos120-bn-$f"
done
