#!/usr/bin/env bash
# Trains every full-profile reference result of the book, one after another (never two at once
# on a 2-core machine). Each step resumes from its checkpoints in runs/ if it was interrupted.
# Usage: FER2013_PATH=path/to/fer2013.zip bash scripts/train_references.sh [step ...]
set -euo pipefail
export FER_PROFILE=full TF_CPP_MIN_LOG_LEVEL=2
steps=("${@:-outliers baseline attention_unet ablations}")
for step in ${steps[@]}; do
  echo "=== $step: $(date -u +%H:%M:%S)"
  case "$step" in
    outliers) fer-core outliers --profile full ;;
    baseline) fer-core train baseline --profile full --exclude-outliers ;;
    attention_unet) fer-core train attention_unet --profile full --exclude-outliers \
                      --label-smoothing 0.1 --width 16 --epochs 25 ;;
    ablations)
      # The study's claims, same seed and an 8-epoch budget each.
      common=(--profile full --epochs 8 --models-dir models/ablations)
      fer-core train baseline "${common[@]}" --no-augment --name baseline_plain
      fer-core train baseline "${common[@]}" --name baseline_augment
      fer-core train baseline "${common[@]}" --exclude-outliers --name baseline_augment_filtered
      fer-core train baseline "${common[@]}" --exclude-outliers --class-weights \
        --name baseline_augment_filtered_weighted
      fer-core train baseline "${common[@]}" --exclude-outliers --denoise \
        --name baseline_augment_filtered_denoised ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done
echo "=== done: $(date -u +%H:%M:%S)"
