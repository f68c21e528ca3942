"""What the real-world degradation adds to a training step on this machine (issue 14's budget: at most 20 %).

    python benchmarks/train_degradation.py [--steps 5] [--batch 16] [--crop 128] [--json ...]

Interleaves, on the same batch, the Trainer's preparation of a real-world batch (``Trainer._prepare``: unsharp mask
of the HR, Real-ESRGAN's second-order degradation, the pair pool) and its pretrain step (forward, loss, backward,
Adam) of the full generator, and reports the median time of each and their ratio. The CPU flags are printed beside
the figures: the numbers are only comparable between runs on the same kind of CPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from srgan.runtime import cpu_flags
from srgan.training import TrainConfig, Trainer

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent / "examples" / "images"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--preset", default="real", choices=["real", "real-mild"])
    ap.add_argument("--json", default=str(HERE / "train_degradation.json"))
    args = ap.parse_args()
    flags = sorted(f for f in cpu_flags() if f.startswith(("avx2", "avx512", "amx", "fma")))
    cfg = TrainConfig(
        phase="pretrain",
        degradation=args.preset,
        sharpen_hr=True,
        pair_pool=args.batch * 4,
        batch_size=args.batch,
        crop_size=args.crop,
        pretrain_loss="l1",
        val_every=0,
        pretrain_steps=args.steps + 2,
    )
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(cfg, train_dirs=[SAMPLES], output_dir=tmp, device="cpu", progress=False)
        (hr,) = next(tr._batches("pretrain"))
        prep, step = [], []
        for i in range(args.steps + 1):
            t0 = time.perf_counter()
            lr, target = tr._prepare((hr,))
            t1 = time.perf_counter()
            tr._train_step(lr, target)
            t2 = time.perf_counter()
            if i:  # the first round warms up
                prep.append(t1 - t0)
                step.append(t2 - t1)
    p, s = statistics.median(prep), statistics.median(step)
    row = {
        "preset": args.preset,
        "batch": args.batch,
        "crop": args.crop,
        "amp": str(tr.amp_dtype),
        "degradation_s": p,
        "step_s": s,
        "added_fraction": p / s,
        "threads": torch.get_num_threads(),
    }
    print(f"CPU flags: {' '.join(flags) or 'unknown'}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(
        f"{args.preset}, batch {args.batch} x {args.crop} px: degradation {p * 1000:.0f} ms, pretrain step "
        f"{s * 1000:.0f} ms ({tr.amp_dtype or 'fp32'}): +{100 * p / s:.1f} % per step"
    )
    Path(args.json).write_text(
        json.dumps({"cpu_flags": flags, "torch": torch.__version__, "rows": [row]}, indent=2) + "\n"
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
