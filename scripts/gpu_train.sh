#!/usr/bin/env bash
# One lease of a GPU machine: continue srresnet-x4 (L1, scripts/train_srresnet.py) for SR_BUDGET seconds, then
# fine-tune two GAN configurations with srgan-train from the result for GAN_SECONDS (0: no GAN; then the command
# only continues the SRResNet from INIT, e.g. INIT=src/srgan/weights/srresnet-x4.pt LR=1e-4). Expects the packed pairs of
# scripts/pack_pairs.py in .gpu/train (T91 + BSDS200) and .gpu/val (Set5), and writes what comes back into $OUT.
set -u
SR_BUDGET=${SR_BUDGET:-320}
GAN_SECONDS=${GAN_SECONDS:-160}
DEVICE=${DEVICE:-cuda}
BATCH=${BATCH:-64}
PATCH=${PATCH:-48}
GAN_BATCH=${GAN_BATCH:-16}
VAL_EVERY=${VAL_EVERY:-500}
INIT=${INIT:-src/srgan/weights/srresnet-x4.pt}
LR=${LR:-2e-4}
export PYTHONPATH=$PWD/src:$PWD/.gpu/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,clocks.sm --format=csv || true
python3 -c "import torch, srgan; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" || exit 1
mkdir -p /tmp/hr /tmp/val "$OUT/sr"
ln -sf "$PWD"/.gpu/train/*_hr.webp /tmp/hr/
ln -sf "$PWD"/.gpu/val/*_hr.webp /tmp/val/
python3 scripts/train_srresnet.py --data .gpu/train --val .gpu/val --out /tmp/sr --steps 200000 \
    --time-budget "$SR_BUDGET" --batch "$BATCH" --small-patch "$PATCH" --large-patch "$PATCH" --lr "$LR" --eval-every 1000 \
    --ckpt-every 2000 --init "$INIT" --eval-at-start --device "$DEVICE" --seed 2 \
    2>&1 | tee "$OUT/sr/train.log"
cp /tmp/sr/best_ema.pt /tmp/sr/metrics.jsonl "$OUT/sr/" || exit 1
[ "$GAN_SECONDS" -gt 0 ] || exit 0
gan() {  # name adv_weight fm_weight
    python3 scripts/snapshot_generators.py "/tmp/$1" --out "$OUT/$1.pt" --stop-file /tmp/stop_gan &
    timeout -s INT "$GAN_SECONDS" python3 -m srgan.training.cli --train-dir /tmp/hr --val-dir /tmp/val \
        --output-dir "/tmp/$1" --phase gan --init /tmp/sr/best_ema.pt --batch-size "$GAN_BATCH" --steps 100000 \
        --content-loss l1 --adv-loss relativistic --adv-weight "$2" --fm-weight "$3" --device "$DEVICE" --workers 5 \
        --set lr_schedule=constant --set ema_decay=0.999 --set val_every="$VAL_EVERY" --set ckpt_every=100000 \
        --set log_every=100 --no-progress > "$OUT/$1.log" 2>&1
}
gan ganA 5e-4 0.2 &
gan ganB 1e-3 0.5 &
sleep "$GAN_SECONDS"; sleep 15; touch /tmp/stop_gan; wait
ls -la "$OUT" "$OUT/sr"
