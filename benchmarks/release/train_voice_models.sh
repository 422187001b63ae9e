#!/usr/bin/env bash
# Release step: train, export and ship the voice model (edgeemo/models/voice/), then benchmark it.
# Chosen by transfer (benchmarks/results/experiments/voice_transfer_attempts.md): utterance functionals
# of the MFCCs and of the prosody columns (pitch, level, spectral balance; --prosody) and a dense head; all four corpora, corpus x class balanced, one simulated
# microphone/room channel per speaker and copy, speaker adaptation; RAVDESS 17-20 and CREMA-D
# 1009-1010 (and SAVEE JE) never trained or tuned on.
# On this 2-core CPU: the shared feature cache takes ~15 min once (413 MB), each run ~10-20 min.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-../shared/data}
D=$DATA
E=".venv/bin/edgeemo train voice --feature-cache runs/voice-features"
HELD=17,18,19,20,1009,1010
ALL=(--data "$D/ravdess,$D/cremad,$D/tess,$D/savee" --test-speakers "$HELD,JE" --val-speakers 15,16,1007,1008
     --epochs 30 --patience 8)
# Q (shipped): utterance functionals of the MFCC and prosody frames in THE preprocessing, a dense head on them
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
  $E "${FOLD[@]}" --arch mlp --summary functionals --prosody --epochs 40 --patience 10 --out "runs/vt-Q-loco-$LEFT"
  $E "${FOLD[@]}" --arch mlp --summary functionals --epochs 40 --patience 10 --out "runs/vt-F-loco-$LEFT"
  $E "${FOLD[@]}" --arch conv1d --epochs 15 --patience 5 --out "runs/vt-A-loco-$LEFT"
done
.venv/bin/edgeemo export runs/vt-Q-all --out runs/export-voice --name voice --force
mkdir -p edgeemo/models/voice
for f in voice-float.tflite voice-int8.tflite voice-float.onnx voice-int8.onnx; do
  cp "runs/export-voice/$f" "runs/export-voice/$f.json" edgeemo/models/voice/
done
# training records (per-corpus test results of every run, the leave-one-corpus-out folds included)
for run in vt-Q-all vt-F-all vt-A-all vt-{Q,F,A}-loco-{ravdess,cremad,tess,savee}; do
  mkdir -p "benchmarks/results/release/training/$run"
  for f in metrics.json config.json history.csv curves.png; do
    [ -f "runs/$run/$f" ] && cp "runs/$run/$f" "benchmarks/results/release/training/$run/"
  done
done
.venv/bin/python benchmarks/suite/voice_heldout.py
.venv/bin/python benchmarks/suite/voice_transfer.py
.venv/bin/python benchmarks/suite/voice_robustness.py --models voice-float,voice
