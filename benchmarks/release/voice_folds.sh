# The leave-one-corpus-out folds of the voice transfer score, sourced by train_voice_models.sh and
# benchmarks/experiments/voice_fold_runs.sh so both train the same folds. `voice_fold CORPUS` sets
# TRAIN (the three other corpora, under $D) and VAL (the validation speakers, from the training side).
voice_fold() {
  case $1 in
    ravdess) TRAIN=$D/cremad,$D/tess,$D/savee; VAL=1007,1008 ;;
    cremad)  TRAIN=$D/ravdess,$D/tess,$D/savee; VAL=15,16 ;;
    tess)    TRAIN=$D/ravdess,$D/cremad,$D/savee; VAL=15,16,1007,1008 ;;
    savee)   TRAIN=$D/ravdess,$D/cremad,$D/tess; VAL=15,16,1007,1008 ;;
    *) echo "unknown corpus to leave out: $1" >&2; return 1 ;;
  esac
}
