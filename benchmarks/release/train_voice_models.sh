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
. benchmarks/release/voice_folds.sh  # voice_fold CORPUS: TRAIN and VAL of a fold
HELD=17,18,19,20,1009,1010
ALL=(--data "$D/ravdess,$D/cremad,$D/tess,$D/savee" --test-speakers "$HELD,JE" --val-speakers 15,16,1007,1008
     --epochs 30 --patience 8)
# Qp2s x 5 seeds (shipped as one ensemble): utterance functionals of the MFCC and prosody frames in THE
# preprocessing, a dense head on them, speaker adaptation with a prior of 2 clips, every (speaker, class)
# pair weighing the same; seeds 1-4 keep seed 0's split and cached features (--data-seed 0) and change the
# init and batch order
QP2S=(--arch mlp --summary functionals --prosody --prior-clips 2 --balance speaker-class)
$E "${ALL[@]}" "${QP2S[@]}" --epochs 60 --patience 12 --out runs/vt-Qp2s-all
for S in 1 2 3 4; do
  $E "${ALL[@]}" "${QP2S[@]}" --epochs 60 --patience 12 --seed $S --data-seed 0 --out "runs/vt-Qp2s-s$S-all"
done
.venv/bin/edgeemo train ensemble runs/vt-Qp2s-all runs/vt-Qp2s-s{1,2,3,4}-all --out runs/vt-Qp2s-ens5-all
# the recipes it was compared with (voice_transfer_attempts.md): Qp2 (corpus x class balance; its seed ensemble
# shipped for an hour), Q (prior 5 clips), F (no prosody), A (the conv1d over the frames)
QP2=(--arch mlp --summary functionals --prosody --prior-clips 2)
$E "${ALL[@]}" "${QP2[@]}" --epochs 60 --patience 12 --out runs/vt-Qp2-all
for S in 1 2 3 4; do
  $E "${ALL[@]}" "${QP2[@]}" --epochs 60 --patience 12 --seed $S --data-seed 0 --out "runs/vt-Qp2-s$S-all"
done
.venv/bin/edgeemo train ensemble runs/vt-Qp2-all runs/vt-Qp2-s{1,2,3,4}-all --out runs/vt-Qp2-ens5-all
$E "${ALL[@]}" --arch mlp --summary functionals --prosody --epochs 60 --patience 12 --out runs/vt-Q-all
$E "${ALL[@]}" --arch mlp --summary functionals --epochs 60 --patience 12 --out runs/vt-F-all
$E "${ALL[@]}" --arch conv1d --out runs/vt-A-all
# leave-one-corpus-out folds (the transfer score); the held-out speakers stay out of every fold; five seeds
# of each functionals recipe (the seed spread and the seed ensembles: benchmarks/experiments/voice_seeds.py)
for LEFT in ravdess cremad tess savee; do
  voice_fold "$LEFT"
  FOLD=(--data "$TRAIN" --test-data "$D/$LEFT" --exclude-speakers "$HELD" --val-speakers "$VAL")
  for REC in Qp2s Qp2 Qp2d2 Q; do
    case $REC in
      Qp2s)  R=("${QP2S[@]}") ;;
      Qp2)   R=("${QP2[@]}") ;;
      Qp2d2) R=("${QP2[@]}" --dropout 0.2) ;;
      Q)     R=(--arch mlp --summary functionals --prosody) ;;
    esac
    $E "${FOLD[@]}" "${R[@]}" --epochs 40 --patience 10 --out "runs/vt-$REC-loco-$LEFT"
    for S in 1 2 3 4; do
      $E "${FOLD[@]}" "${R[@]}" --epochs 40 --patience 10 --seed $S --data-seed 0 --out "runs/vt-$REC-s$S-loco-$LEFT"
    done
  done
  $E "${FOLD[@]}" --arch mlp --summary functionals --epochs 40 --patience 10 --out "runs/vt-F-loco-$LEFT"
  $E "${FOLD[@]}" --arch conv1d --epochs 15 --patience 5 --out "runs/vt-A-loco-$LEFT"
done
.venv/bin/python benchmarks/experiments/voice_seeds.py --recipes Q,Qp2,Qp2d2,Qp2s  # builds vt-*-ens5-loco-*
.venv/bin/edgeemo export runs/vt-Qp2s-ens5-all --out runs/export-voice --name voice --force
mkdir -p edgeemo/models/voice
for f in voice-float.tflite voice-int8.tflite voice-float.onnx voice-int8.onnx; do
  cp "runs/export-voice/$f" "runs/export-voice/$f.json" edgeemo/models/voice/
done
# training records (per-corpus test results of every run, the leave-one-corpus-out folds included; the seed
# runs without their curves, to keep the folder small)
for run in vt-{Qp2s,Qp2}-ens5-all vt-{Qp2s,Qp2}-all vt-{Qp2s,Qp2}-s{1,2,3,4}-all vt-Q-all vt-F-all vt-A-all \
           vt-{Qp2s,Qp2,Qp2d2,Q}-{,s1-,s2-,s3-,s4-}loco-{ravdess,cremad,tess,savee} \
           vt-{Qp2s,Qp2,Qp2d2,Q}-ens5-loco-{ravdess,cremad,tess,savee} vt-{F,A}-loco-{ravdess,cremad,tess,savee}; do
  mkdir -p "benchmarks/results/release/training/$run"
  for f in metrics.json config.json history.csv curves.png; do
    case $run in *-s[1-4]-*) [ $f = curves.png ] && continue ;; esac
    [ -f "runs/$run/$f" ] && cp "runs/$run/$f" "benchmarks/results/release/training/$run/"
  done
done
.venv/bin/python benchmarks/suite/voice_heldout.py
.venv/bin/python benchmarks/suite/voice_transfer.py
.venv/bin/python benchmarks/suite/voice_robustness.py --models voice-float,voice
