#!/usr/bin/env bash
# One lease of a GPU machine: run a slice of a packaged recipe with srgan-train, with a hard stop so that results
# come back inside the lease. Everything is the product's Trainer; this only sets paths and the clock.
#
#   RECIPE=srresnet-x4 FROM=run3 TO=run4 USE="run2=src/srgan/weights/srresnet-x4.pt" LIMIT=540 bash scripts/gpu_train.sh
#
# Expects training images packed by scripts/pack_images.py in .gpu/train and validation images in .gpu/val;
# writes the run folders (generator.pt, metrics.jsonl, stage.json, exports/) into RUN (default $OUT/run) and the log
# into LOG (default $OUT/train.log); several chains can share one GPU with different RUN and LOG.
set -u
RECIPE=${RECIPE:-srresnet-x4}
DEVICE=${DEVICE:-cuda}
RUN=${RUN:-$OUT/run}
LOG=${LOG:-$OUT/train.log}
LIMIT=${LIMIT:-540}  # seconds before the run is interrupted (Ctrl-C: the Trainer saves its state and stops)
ARGS=(--recipe "$RECIPE" --train-dir .gpu/train --val-dir .gpu/val --output-dir "$RUN" --device "$DEVICE"
      --keep-exports --no-progress)
[ -n "${FROM:-}" ] && ARGS+=(--from-stage "$FROM")
[ -n "${TO:-}" ] && ARGS+=(--to-stage "$TO")
for u in ${USE:-}; do ARGS+=(--use "$u"); done
for s in ${SET:-}; do ARGS+=(--set "$s"); done
export PYTHONPATH=$PWD/src:$PWD/.gpu/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv || true
python3 -c "import torch, srgan; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" || exit 1
mkdir -p "$OUT" "$(dirname "$LOG")"
timeout -s INT "$LIMIT" python3 -m srgan.train "${ARGS[@]}" 2>&1 | tee "$LOG"
