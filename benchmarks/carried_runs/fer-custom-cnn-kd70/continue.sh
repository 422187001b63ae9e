# Continue the carried distillation run to its end, then recalibrate it and compare it with the
# shipped model on validation (README.md beside this file explains each step). Re-run after an
# interruption: every step skips what is already there.
#
#   bash benchmarks/carried_runs/fer-custom-cnn-kd70/continue.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
E=.venv/bin/edgeemo
PY=.venv/bin/python
CARRIED=benchmarks/carried_runs/fer-custom-cnn-kd70
mkdir -p runs

# 1. The teacher: both members rebuilt from their committed float ONNX files, then averaged.
if [ ! -f runs/ens-bn-cos-mirror/metrics.json ]; then
    git show 79c747e^:edgeemo/models/face/face-float.onnx > runs/prev-face-float.onnx
    [ -f runs/fer-custom-cnn-cos120-bn/finished.json ] || \
        $PY benchmarks/recover_face_parent.py --out runs/fer-custom-cnn-cos120-bn
    [ -f runs/fer-custom-cnn-bf16-ft-bn/finished.json ] || \
        $PY benchmarks/recover_face_parent.py --out runs/fer-custom-cnn-bf16-ft-bn --onnx runs/prev-face-float.onnx \
            --config benchmarks/results/training/fer-custom-cnn-bf16-ft-bn-config.json
    $E train ensemble runs/fer-custom-cnn-bf16-ft-bn runs/fer-custom-cnn-cos120-bn --mirror --out runs/ens-bn-cos-mirror
fi

# 2. The student: start from the carried folder unless this checkout's runs/ is further on.
if [ ! -f runs/fer-custom-cnn-kd70/history.csv ] || \
   [ "$(wc -l < runs/fer-custom-cnn-kd70/history.csv)" -lt "$(wc -l < $CARRIED/history.csv)" ]; then
    rm -rf runs/fer-custom-cnn-kd70 && mkdir runs/fer-custom-cnn-kd70
    cp $CARRIED/config.json $CARRIED/history.csv $CARRIED/last.weights.npz runs/fer-custom-cnn-kd70/
fi
$E train face --data ../shared/data/fer2013 --out runs/fer-custom-cnn-kd70 --seed 2 --split-seed 0 --lr 1e-3 \
    --schedule cosine --epochs 70 --patience 70 --teacher runs/ens-bn-cos-mirror --teacher-weight 0.7 \
    --temperature 2 --label-smoothing 0

# 3. BatchNorm recalibration, then validation only (the shipped model, rebuilt: 65.91%, 0.6348, 0.9384).
[ -f runs/fer-custom-cnn-kd70-bn/finished.json ] || \
    $E train recalibrate runs/fer-custom-cnn-kd70 --out runs/fer-custom-cnn-kd70-bn --keep-worse
$PY benchmarks/face_runs_on_validation.py runs/fer-custom-cnn-cos120-bn runs/fer-custom-cnn-kd70 runs/fer-custom-cnn-kd70-bn
