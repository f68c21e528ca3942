#!/usr/bin/env bash
# The second H200 lease of issue 14, in one command: srresnet-x4-real's stage real2 alone on the GPU (from
# real1, trained in the first lease by scripts/gpu_real.sh and carried as .gpu/real1.pt), then srgan-x4-real's
# GAN stage from it twice side by side, with and without unsharp-masked HR targets (sharpen_hr), to choose on the
# CPU afterwards. Each run is packed into $OUT as soon as it ends (scripts/gpu_pack.py).
#
#   bash scripts/gpu_real2.sh
#   DEVICE=cpu SMOKE=1 OUT=/tmp/o bash scripts/gpu_real2.sh      # tried here first
set -u
DEVICE=${DEVICE:-cuda}
W=${WORK:-/tmp/lease2}
export PYTHONPATH=$PWD/src:$PWD/.gpu/site PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$W"
SMALL=""
[ -n "${SMOKE:-}" ] && SMALL="pretrain_steps=4 gan_steps=4 batch_size=2 crop_size=96 val_max_images=1 warmup_steps=1"
date
RECIPE=srresnet-x4-real DEVICE=$DEVICE FROM=real2 TO=real2 USE="real1=.gpu/real1.pt" RUN="$W/px" LOG="$W/px/train.log" \
    LIMIT=${PX_LIMIT:-215} SET="time_budget=${PX_BUDGET:-170} num_workers=14 $SMALL" bash scripts/gpu_train.sh 2>&1 | tail -n 8
python3 scripts/gpu_pack.py "$W/px" "$OUT/real2" || exit 1
date
for v in sharp plain; do
    s=true; [ "$v" = plain ] && s=false
    RECIPE=examples/recipes/srgan-x4-real.toml DEVICE=$DEVICE FROM=gan USE="real2=$W/px/real2/generator.pt" RUN="$W/$v" LOG="$W/$v/train.log" \
        LIMIT=${GAN_LIMIT:-160} SET="time_budget=${GAN_BUDGET:-110} num_workers=7 sharpen_hr=$s $SMALL" \
        bash scripts/gpu_train.sh > "$W/$v.out" 2>&1 &
done
wait
tail -n 4 "$W"/*/train.log
for v in sharp plain; do python3 scripts/gpu_pack.py "$W/$v" "$OUT/$v" --exports 3; done
date
