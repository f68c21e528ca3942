#!/usr/bin/env bash
# One lease of a GPU machine: self-ensemble distillation of srresnet-x4 (scripts/train_srresnet.py --teacher),
# three configurations side by side on one GPU for SR_BUDGET seconds each. The teacher's x8 self-ensemble outputs
# are computed once on the GPU (fp32) and shared through /tmp/teacher.pt (skipped when that file exists).
# Expects the packed pairs of scripts/pack_pairs.py in .gpu/train (T91 + BSDS200) and .gpu/val (Set5); writes
# each run's best_ema.pt (chosen on Set5) and metrics.jsonl into $OUT/<name>, and all logs into $OUT/logs.txt.
#
#   CONFIGS="name:loss:lr:batch:patch[:teacher_weight] ..."  (default below)
set -u
SR_BUDGET=${SR_BUDGET:-440}
DEVICE=${DEVICE:-cuda}
INIT=${INIT:-src/srgan/weights/srresnet-x4.pt}
TEACHER=${TEACHER:-srresnet-x4}
EVAL_EVERY=${EVAL_EVERY:-1000}
DATA=${DATA:-.gpu/train}
VAL=${VAL:-.gpu/val}
CONFIGS=${CONFIGS:-"a:l1:1e-4:64:48 b:mse:5e-5:64:48 c:l1:2e-4:32:64"}
export PYTHONPATH=$PWD/src:$PWD/.gpu/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv || true
python3 -c "import torch, srgan; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" || exit 1
T0=$(date +%s)
python3 scripts/train_srresnet.py --data "$DATA" --val "$VAL" --out /tmp/t0 --steps 0 --device "$DEVICE" \
    --teacher "$TEACHER" --teacher-cache /tmp/teacher.pt > /tmp/teacher.log 2>&1 || { cat /tmp/teacher.log; exit 1; }
echo "teacher ready after $(( $(date +%s) - T0 )) s"
for cfg in $CONFIGS; do
    IFS=: read -r name loss lr batch patch tw <<< "$cfg"
    mkdir -p "/tmp/$name" "$OUT/$name"
    python3 scripts/train_srresnet.py --data "$DATA" --val "$VAL" --out "/tmp/$name" --steps 200000 \
        --time-budget "$SR_BUDGET" --batch "$batch" --small-patch "$patch" --large-patch "$patch" --lr "$lr" \
        --loss "$loss" --teacher "$TEACHER" --teacher-cache /tmp/teacher.pt --teacher-weight "${tw:-1}" \
        --eval-every "$EVAL_EVERY" --ckpt-every 100000 --init "$INIT" --eval-at-start --device "$DEVICE" --seed 3 \
        > "/tmp/$name.log" 2>&1 &
done
# Hard stop (evaluations are not in the time budget): whatever is running SLACK seconds past the budget is
# stopped, so the best checkpoints still come back before the lease's limit.
T1=$(date +%s)
while [ -n "$(jobs -rp)" ] && [ $(( $(date +%s) - T1 )) -lt $(( SR_BUDGET + ${SLACK:-80} )) ]; do sleep 2; done
[ -z "$(jobs -rp)" ] || { echo "stopping late runs"; kill $(jobs -rp); sleep 3; }
echo "all runs done after $(( $(date +%s) - T0 )) s"
for cfg in $CONFIGS; do
    name=${cfg%%:*}
    cp "/tmp/$name/best_ema.pt" "/tmp/$name/metrics.jsonl" "$OUT/$name/" || true
    { echo "== $name ($cfg)"; grep -E "val|budget|done|Error|error" "/tmp/$name.log"; } | tee -a "$OUT/logs.txt"
done
cat /tmp/teacher.log >> "$OUT/logs.txt"
