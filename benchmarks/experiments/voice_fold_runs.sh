#!/usr/bin/env bash
# The leave-one-corpus-out fold runs of the voice recipes compared with the shipped one (Qp2s), for
# benchmarks/experiments/voice_seeds.py and voice_bagging.py; voice_transfer_attempts.md says what each
# recipe is and why. Every recipe is Qp2s (benchmarks/release/train_voice_models.sh) plus its options.
#
#   bash benchmarks/experiments/voice_fold_runs.sh RECIPE SEEDS [FOLDS]
#   e.g. bash benchmarks/experiments/voice_fold_runs.sh Qp2sB25 0,1,2,3,4,5,6,7,8,9
#        bash benchmarks/experiments/voice_fold_runs.sh Qp2sF10 0,1,2,3,4 cremad
#
# Runs go to runs/vt-<RECIPE>[-s<SEED>]-loco-<FOLD> (seed 0 without -s0); a finished run is skipped.
# Seeds share seed 0's split and cached features (--data-seed 0).
set -uo pipefail
cd "$(dirname "$0")/../.."
REC=$1; SEEDS=$2; FOLDS=${3:-ravdess,cremad,tess,savee}
D=../shared/data
. benchmarks/release/voice_folds.sh  # voice_fold CORPUS: TRAIN and VAL of a fold
HELD=17,18,19,20,1009,1010
E=(.venv/bin/edgeemo train voice --feature-cache runs/voice-features --data-seed 0)
QP2S=(--arch mlp --summary functionals --prosody --prior-clips 2 --balance speaker-class --epochs 40 --patience 10)
EXCLUDE=$HELD
case $REC in
  Qp2s)     EXTRA=() ;;
  Qp2sT3)   EXTRA=(--talker-pitch 3) ;;
  Qp2sW256) EXTRA=(--head-units 256) ;;
  Qp2sA5)   EXTRA=(--adversary 0.5) ;;
  Qp2sB25)  EXTRA=(--speaker-bag 0.25) ;;
  Qp2sS5)   EXTRA=(--adversary 0.5 --adversary-on sentence) ;;  # what a clip says, within its corpus
  Qp2sF10)  EXTRA=(); EXCLUDE=$HELD,11,12,13,14 ;;  # the speaker learning curve: 10 RAVDESS training actors
  *) echo "unknown recipe $REC" >&2; exit 2 ;;
esac
for S in ${SEEDS//,/ }; do
  for LEFT in ${FOLDS//,/ }; do
    voice_fold "$LEFT" || exit 2
    R=runs/vt-$REC-s$S-loco-$LEFT; [ "$S" = 0 ] && R=runs/vt-$REC-loco-$LEFT
    [ "$REC" = Qp2sF10 ] && R=runs/vt-$REC-s$S-loco-$LEFT
    [ -f "$R/metrics.json" ] && continue
    nice -n 15 "${E[@]}" --seed "$S" --data "$TRAIN" --test-data "$D/$LEFT" --exclude-speakers "$EXCLUDE" \
      --val-speakers "$VAL" "${QP2S[@]}" "${EXTRA[@]}" --out "$R" > "$R.log" 2>&1 || { echo "failed: $R" >&2; exit 1; }
    echo "done $R $(date -u +%H:%M:%S)"
  done
done
