"""Real-world degradation speed: the torch JPEG against Pillow in worker threads, and the whole second-order model.

    python benchmarks/degradation.py [--batch 16] [--size 128] [--repeats 20] [--workers N]
                                     [--json benchmarks/degradation.json]

(a) ``srgan.degradation.jpeg`` on an N x 3 x S x S float batch at random per-image qualities 30..95; (b) the same
images through Pillow's JPEG encoder + decoder (4:2:0), one image per task in a thread pool of data workers (the
batch to uint8 numpy and back included); (c) ``RealDegradation`` ("real" preset) on the batch. All three at torch's
thread count and again at one thread (as in a data-loader worker; Pillow's path converts the batch with torch ops
too). Each figure is the median wall time of ``--repeats`` runs after a warm-up, with the process CPU time per
batch beside it. The images are random crops of the sample photos; the PSNR between the two JPEG paths' outputs is
reported too.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import srgan
from srgan.degradation import RealDegradation, jpeg, jpeg_pillow
from srgan.runtime import cpu_flags

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent / "examples" / "images"


def photo_batch(n: int, size: int) -> torch.Tensor:
    rng = np.random.default_rng(0)
    photos = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(SAMPLES.glob("*.png"))]
    crops = []
    for i in range(n):
        img = photos[i % len(photos)]
        y, x = rng.integers(0, img.shape[0] - size), rng.integers(0, img.shape[1] - size)
        crops.append(img[y : y + size, x : x + size])
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(median wall ms, mean process CPU ms) per call, after one warm-up call."""
    fn()
    walls = []
    cpu0 = time.process_time()
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
    cpu = (time.process_time() - cpu0) / repeats
    return statistics.median(walls) * 1000, cpu * 1000


def _degrade_next(degrade: RealDegradation, x: torch.Tensor, seeds: Iterator[int]) -> torch.Tensor:
    return degrade(x, generator=torch.Generator().manual_seed(next(seeds)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="Pillow worker threads")
    ap.add_argument("--json", default=str(HERE / "degradation.json"))
    args = ap.parse_args()

    x = photo_batch(args.batch, args.size)
    quality = torch.randint(30, 96, (args.batch,), generator=torch.Generator().manual_seed(0))
    threads = torch.get_num_threads()
    flags = sorted(f for f in cpu_flags() if f == "avx2" or f.startswith(("avx512", "amx")))
    report: dict[str, object] = {
        "batch": [args.batch, 3, args.size, args.size],
        "srgan": srgan.__version__,
        "torch": torch.__version__,
        "pillow": Image.__version__,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_flags": flags,
        "torch_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": threads,
        "pillow_workers": args.workers,
        "load_average_before": list(os.getloadavg()),
        "nice": os.nice(0),
        "repeats": args.repeats,
    }
    ours, theirs = jpeg(x, quality), jpeg_pillow(x, quality, workers=args.workers)
    mse = float(((ours.double() - theirs.double()) ** 2).mean())
    report["psnr_torch_vs_pillow_db"] = 10 * float(np.log10(1 / mse)) if mse else float("inf")

    degrade = RealDegradation("real")
    for n_threads in sorted({threads, 1}, reverse=True):
        seeds = itertools.count()  # the same degradations at each thread count
        step = functools.partial(_degrade_next, degrade, x, seeds)
        torch.set_num_threads(n_threads)
        figures: dict[str, float] = {}
        figures["jpeg_torch_ms"], figures["jpeg_torch_cpu_ms"] = timed(lambda: jpeg(x, quality), args.repeats)
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            figures["jpeg_pillow_ms"], figures["jpeg_pillow_cpu_ms"] = timed(
                lambda: jpeg_pillow(x, quality, pool=pool), args.repeats
            )
        figures["pipeline_ms"], figures["pipeline_cpu_ms"] = timed(step, max(5, args.repeats // 2))
        report[f"torch_threads_{n_threads}"] = figures
    torch.set_num_threads(threads)
    report["load_average_after"] = list(os.getloadavg())

    shape = "x".join(str(v) for v in (args.batch, 3, args.size, args.size))
    print(f"CPU flags: {' '.join(flags) or '(none of avx2/avx512*/amx*)'}")
    print(f"batch {shape}, JPEG at qualities 30..95 per image; median wall ms / process CPU ms per batch:")
    for n_threads in sorted({threads, 1}, reverse=True):
        f = report[f"torch_threads_{n_threads}"]
        assert isinstance(f, dict)
        print(f"  torch threads {n_threads}:")
        print(f"    torch jpeg                 {f['jpeg_torch_ms']:8.1f} / {f['jpeg_torch_cpu_ms']:.1f}")
        print(f"    Pillow, {args.workers} worker threads   {f['jpeg_pillow_ms']:8.1f} / {f['jpeg_pillow_cpu_ms']:.1f}")
        print(f"    RealDegradation('real')    {f['pipeline_ms']:8.1f} / {f['pipeline_cpu_ms']:.1f}")
    print(f"  PSNR torch jpeg vs Pillow: {report['psnr_torch_vs_pillow_db']:.2f} dB")
    print(f"load average {report['load_average_before']} -> {report['load_average_after']}, nice {report['nice']}")
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
