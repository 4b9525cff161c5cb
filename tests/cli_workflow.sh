#!/bin/bash
# The command-line workflow end to end on a tiny budget: demo (train on generated shapes, write a
# checkpoint and a labelled folder) -> train on that folder -> resume -> eval -> predict on a folder
# holding one corrupt image. Usage: cli_workflow.sh <path to the smp binary>
set -euo pipefail
smp=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$smp" demo --out "$work/demo" --epochs 1 --train-images 16 --val-images 6 --size 64 --encoder resnet18 \
  > "$work/demo.log"
grep -q "demo: validation mIoU" "$work/demo.log" || fail "demo printed no final line"
for f in best/config.json best/model.safetensors last/trainer_state.pt log.csv overlays/000_overlay.png \
         val/images/00000.png val/masks/00000.png; do
  [ -f "$work/demo/$f" ] || fail "demo did not write $f"
done

model="Unet encoder_name=resnet18 encoder_depth=3 decoder_channels=[16,8,4] classes=4"
# shellcheck disable=SC2086
"$smp" train $model --data "$work/demo/val" --epochs 1 --size 64 --batch-size 2 --val-split 0.34 \
  --out "$work/run" > "$work/train.log"
[ -f "$work/run/best/model.safetensors" ] || fail "train wrote no best checkpoint"
[ "$(wc -l < "$work/run/log.csv")" -eq 2 ] || fail "log.csv should hold a header and one epoch"
# shellcheck disable=SC2086
"$smp" train $model --data "$work/demo/val" --epochs 2 --size 64 --batch-size 2 --val-split 0.34 \
  --out "$work/run" --resume > "$work/resume.log"
grep -q "resuming after epoch 1" "$work/resume.log" || fail "train --resume did not continue after epoch 1"
[ "$(wc -l < "$work/run/log.csv")" -eq 3 ] || fail "resume should append the second epoch to log.csv"

"$smp" eval --model "$work/run/best" --data "$work/demo/val" > "$work/eval.log"
grep -q "^mean " "$work/eval.log" || fail "eval printed no mean row"

cp -r "$work/demo/val/images" "$work/in"
echo "not a png" > "$work/in/broken.png"
"$smp" predict --model "$work/run/best" --input "$work/in" --output "$work/pred" > "$work/predict.log"
grep -q "skipped 1" "$work/predict.log" || fail "predict did not report the corrupt image"
[ "$(ls "$work/pred" | grep -c '_mask.png$')" -eq 6 ] || fail "predict should write 6 masks"
[ "$(ls "$work/pred" | grep -c '_overlay.png$')" -eq 6 ] || fail "predict should write 6 overlays"

if "$smp" train $model --data "$work/nowhere" --out "$work/bad" 2> "$work/err.log"; then fail "train on a missing folder succeeded"; fi
grep -q "nowhere" "$work/err.log" || fail "the error does not name the missing folder"
# A JSON config with flags overriding it; a misspelt setting is named with its close match.
echo '{"arch": "Unet", "model": {"encoder_name": "resnet18", "encoder_depth": 3, "decoder_channels": [16, 8, 4],
  "classes": 4}, "train": {"epochs": 1, "batch_size": 2, "size": 64, "val_split": 0.34}}' > "$work/run.json"
"$smp" train --config "$work/run.json" --data "$work/demo/val" --lr 0.002 --out "$work/cfg" > "$work/cfg.log"
grep -q '"lr": 0.002' "$work/cfg/train_settings.json" || fail "--lr did not override the config"
echo '{"arch": "Unet", "train": {"epoch": 1}}' > "$work/typo.json"
if "$smp" train --config "$work/typo.json" --data "$work/demo/val" 2> "$work/typo.err"; then fail "a misspelt setting was accepted"; fi
grep -q "unknown train setting 'epoch'. Did you mean: epochs" "$work/typo.err" || fail "the error does not name the setting"
# The seed covers initialisation, shuffling and augmentation: two runs give the same bytes.
for i in 1 2; do
  # shellcheck disable=SC2086
  "$smp" train $model --data "$work/demo/val" --epochs 1 --size 64 --batch-size 2 --val-split 0.34 --workers 0 \
    --seed 7 --out "$work/same$i" > /dev/null
done
cmp -s "$work/same1/last/model.safetensors" "$work/same2/last/model.safetensors" ||
  fail "two identical training runs gave different weights"
# An architecture without weights is refused rather than segmenting with random ones.
if "$smp" predict Unet --input "$work/in" --output "$work/random" 2> "$work/noweights.err"; then
  fail "predict with random weights succeeded"
fi
grep -q "no weights to segment with" "$work/noweights.err" || fail "the error does not say what is missing"
[ ! -e "$work/random" ] || fail "predict without weights wrote output"
echo "cli workflow: ok"
