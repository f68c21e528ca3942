"""Training-speed benchmark: steps per second of the default TrainConfig, fp32 NCHW vs the default fast path.

    python benchmarks/train.py [--steps 5] [--phases pretrain gan] [--json benchmarks/train.json]

The fast path is what the Trainer does by default on this hardware: bf16 autocast (CPUs with native bf16, CUDA)
and channels_last. The baseline is the same step in fp32 with NCHW tensors. Both use the paper's default config
(16 blocks, batch 16, 96x96 HR crops; GAN phase with the VGG54 content loss and the discriminator). VGG weights
are random here (no download needed); the cost is the same as with ImageNet weights.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from srgan import TrainConfig, Trainer

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent / "examples" / "images"


def measure(phase: str, fast: bool, steps: int, workdir: Path) -> float:
    cfg = TrainConfig(
        phase=phase,
        amp="auto" if fast else "none",
        channels_last=fast,
        vgg_weights="none",
        val_every=0,
        pretrain_steps=steps + 2,
        gan_steps=steps + 2,
    )
    tr = Trainer(cfg, train_dirs=[SAMPLES], output_dir=workdir / f"{phase}-{fast}", device="cpu", progress=False)
    tr.phase = phase
    lr, hr = next(tr._batches(phase))
    step = tr._train_step
    for _ in range(2):  # warm-up
        step(lr, hr)
    t0 = time.perf_counter()
    for _ in range(steps):
        step(lr, hr)
    return steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--phases", nargs="+", default=["pretrain", "gan"], choices=["pretrain", "gan"])
    ap.add_argument("--json", default=str(HERE / "train.json"))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for phase in args.phases:
            base = measure(phase, False, args.steps, Path(tmp))
            fast = measure(phase, True, args.steps, Path(tmp))
            rows.append({"phase": phase, "fp32_steps_per_s": base, "fast_steps_per_s": fast, "speedup": fast / base})
            print(
                f"{phase}: fp32 NCHW {base:.3f} steps/s, bf16 autocast + channels_last {fast:.3f} steps/s, "
                f"x{fast / base:.2f}"
            )
    Path(args.json).write_text(json.dumps({"torch": torch.__version__, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
