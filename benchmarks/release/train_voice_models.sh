#!/usr/bin/env bash
# Release step: train, export and ship the voice model (edgeemo/models/voice/), then benchmark it.
# Chosen by transfer (benchmarks/results/experiments/voice_transfer_attempts.md): utterance functionals
# of the MFCCs and of the prosody columns (pitch, level, spectral balance; --prosody) and a dense head, five
# seeds averaged into one model (a seed ensemble); all four corpora, corpus x class balanced, one simulated
# microphone/room channel per speaker and copy, speaker adaptation; RAVDESS 17-20 and CREMA-D
# 1009-1010 (and SAVEE JE) never trained or tuned on.
# On this 2-core CPU: the shared feature cache takes ~15 min once (413 MB), each run ~10-20 min
# (a functionals run on cached features: 30-60 s).
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-../shared/data}
D=$DATA
E=".venv/bin/edgeemo train voice --feature-cache runs/voice-features"
HELD=17,18,19,20,1009,1010
ALL=(--data "$D/ravdess,$D/cremad,$D/tess,$D/savee" --test-speakers "$HELD,JE" --val-speakers 15,16,1007,1008
     --epochs 30 --patience 8)
# Qp2 x 5 seeds (shipped as one ensemble): utterance functionals of the MFCC and prosody frames in THE
# preprocessing, a dense head on them, speaker adaptation with a prior of 2 clips; seeds 1-4 keep seed 0's
# split and cached features (--data-seed 0) and change the init and batch order
QP2=(--arch mlp --summary functionals --prosody --prior-clips 2)
$E "${ALL[@]}" "${QP2[@]}" --epochs 60 --patience 12 --out runs/vt-Qp2-all
for S in 1 2 3 4; do
  $E "${ALL[@]}" "${QP2[@]}" --epochs 60 --patience 12 --seed $S --data-seed 0 --out "runs/vt-Qp2-s$S-all"
done
.venv/bin/edgeemo train ensemble runs/vt-Qp2-all runs/vt-Qp2-s{1,2,3,4}-all --out runs/vt-Qp2-ens5-all
# Q: the same with a prior of 5 clips (shipped before the seed comparison)
$E "${ALL[@]}" --arch mlp --summary functionals --prosody --epochs 60 --patience 12 --out runs/vt-Q-all
# F: the same without the prosody columns (shipped before P)
$E "${ALL[@]}" --arch mlp --summary functionals --epochs 60 --patience 12 --out runs/vt-F-all
# A: the conv1d over the frames it replaced (the comparison row of every table)
$E "${ALL[@]}" --arch conv1d --out runs/vt-A-all
# leave-one-corpus-out folds of both recipes (the transfer score); the held-out speakers stay out of every fold
for LEFT in ravdess cremad tess savee; do
  case $LEFT in
    ravdess) TRAIN=$D/cremad,$D/tess,$D/savee; VAL=1007,1008 ;;
    cremad)  TRAIN=$D/ravdess,$D/tess,$D/savee; VAL=15,16 ;;
    tess)    TRAIN=$D/ravdess,$D/cremad,$D/savee; VAL=15,16,1007,1008 ;;
    savee)   TRAIN=$D/ravdess,$D/cremad,$D/tess; VAL=15,16,1007,1008 ;;
  esac
  FOLD=(--data "$TRAIN" --test-data "$D/$LEFT" --exclude-speakers "$HELD" --val-speakers "$VAL")
  $E "${FOLD[@]}" "${QP2[@]}" --epochs 40 --patience 10 --out "runs/vt-Qp2-loco-$LEFT"
  for S in 1 2 3 4; do  # the seed spread and the seed ensemble (benchmarks/experiments/voice_seeds.py)
    $E "${FOLD[@]}" "${QP2[@]}" --epochs 40 --patience 10 --seed $S --data-seed 0 --out "runs/vt-Qp2-s$S-loco-$LEFT"
    $E "${FOLD[@]}" --arch mlp --summary functionals --prosody --epochs 40 --patience 10 --seed $S --data-seed 0 \
      --out "runs/vt-Q-s$S-loco-$LEFT"
  done
  $E "${FOLD[@]}" --arch mlp --summary functionals --prosody --epochs 40 --patience 10 --out "runs/vt-Q-loco-$LEFT"
  $E "${FOLD[@]}" --arch mlp --summary functionals --epochs 40 --patience 10 --out "runs/vt-F-loco-$LEFT"
  $E "${FOLD[@]}" --arch conv1d --epochs 15 --patience 5 --out "runs/vt-A-loco-$LEFT"
done
.venv/bin/python benchmarks/experiments/voice_seeds.py  # builds the fold ensembles vt-{Q,Qp2}-ens5-loco-*
.venv/bin/edgeemo export runs/vt-Qp2-ens5-all --out runs/export-voice --name voice --force
mkdir -p edgeemo/models/voice
for f in voice-float.tflite voice-int8.tflite voice-float.onnx voice-int8.onnx; do
  cp "runs/export-voice/$f" "runs/export-voice/$f.json" edgeemo/models/voice/
done
# training records (per-corpus test results of every run, the leave-one-corpus-out folds included)
for run in vt-Qp2-ens5-all vt-Qp2-all vt-Q-all vt-F-all vt-A-all \
           vt-{Qp2-ens5,Qp2,Q,F,A}-loco-{ravdess,cremad,tess,savee}; do
  mkdir -p "benchmarks/results/release/training/$run"
  for f in metrics.json config.json history.csv curves.png; do
    [ -f "runs/$run/$f" ] && cp "runs/$run/$f" "benchmarks/results/release/training/$run/"
  done
done
.venv/bin/python benchmarks/suite/voice_heldout.py
.venv/bin/python benchmarks/suite/voice_transfer.py
.venv/bin/python benchmarks/suite/voice_robustness.py --models voice-float,voice
