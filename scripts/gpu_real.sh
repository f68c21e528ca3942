#!/usr/bin/env bash
# The H200 lease of issues 14 and 16, in one command: first the GPU benchmark alone on the card
# (benchmarks/gpu.py), then two chains of the srgan-x4-real recipe side by side on the same GPU, the recipe's
# own "real-mild" degradation and Real-ESRGAN's full "real" ranges (to pick the better on the CPU afterwards).
# (The lease ran the recipe as it then was, real1 -> gan; today the recipe file chains real1 -> real2 -> gan.)
# Each stage gets TIME_BUDGET seconds of training (the Trainer fits its step count to it). What comes back
# under $OUT: gpu.json, gpu.md, and per chain the tars of scripts/gpu_pack.py (fp16 stage outputs and kept
# exports, metrics.jsonl, stage.json, the log).
#
#   bash scripts/gpu_real.sh            # on the lent machine; $OUT is the folder that comes back
#   DEVICE=cpu BENCH_ARGS=--quick TIME_BUDGET=20 SMOKE=1 OUT=/tmp/o bash scripts/gpu_real.sh   # tried here first
set -u
DEVICE=${DEVICE:-cuda}
TIME_BUDGET=${TIME_BUDGET:-125}
BENCH_LIMIT=${BENCH_LIMIT:-140}
TRAIN_LIMIT=${TRAIN_LIMIT:-330}
W=${WORK:-/tmp/lease}
export PYTHONPATH=$PWD/src:$PWD/.gpu/site PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$W"
date
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
# The real-world degradation on this device first (as the Trainer calls it): a failure here ends the lease early.
python3 -c "
import torch; from srgan.degradation import RealDegradation
for p in ('real', 'real-mild'):
    y = RealDegradation(p.replace('real-mild', 'mild'))(torch.rand(8, 3, 192, 192, device='$DEVICE'), generator=torch.Generator().manual_seed(0))
    print(p, 'degradation ok', tuple(y.shape), y.device, float(y.mean()))
" || exit 1
timeout -s INT "$BENCH_LIMIT" python3 benchmarks/gpu.py --device "$DEVICE" ${BENCH_ARGS:-} --photos .gpu/val \
    --json "$OUT/gpu.json" --md "$OUT/gpu.md" 2>&1 | tee "$W/bench.log" | tail -60
date
SET_COMMON="time_budget=$TIME_BUDGET num_workers=6"
if [ -n "${SMOKE:-}" ]; then  # tiny settings for the CPU try-out
    SET_COMMON="$SET_COMMON pretrain_steps=4 gan_steps=4 batch_size=2 crop_size=96 val_max_images=1 warmup_steps=1"
fi
for chain in mild real; do
    extra=""; [ "$chain" = real ] && extra="degradation=real"
    RECIPE=examples/recipes/srgan-x4-real.toml DEVICE=$DEVICE RUN="$W/$chain" LOG="$W/$chain/train.log" LIMIT=$TRAIN_LIMIT \
        SET="$SET_COMMON $extra" bash scripts/gpu_train.sh > "$W/$chain.out" 2>&1 &
done
wait
date
tail -n 4 "$W"/*/train.log
for chain in mild real; do python3 scripts/gpu_pack.py "$W/$chain" "$OUT/$chain" --exports 3; done
cp "$W/bench.log" "$OUT/bench.log" 2>/dev/null
date
