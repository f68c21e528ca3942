"""Folder throughput: ``srgan upscale FOLDER`` (threaded decode/encode) against a plain loop of ``upscale`` calls.

    python benchmarks/batch.py [--count 200] [--size 64] [--model NAME|PATH] [--json benchmarks/batch.json]

Both runs use the same model, settings and 200 small photos (random crops of the sample images, saved as PNG),
in one process, one after the other.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from srgan import SRGAN
from srgan.cli import main as cli_main

HERE = Path(__file__).resolve().parent


def make_folder(folder: Path, count: int, size: int) -> None:
    rng = np.random.default_rng(0)
    photos = [
        np.asarray(Image.open(p).convert("RGB")) for p in sorted((HERE.parent / "examples" / "images").glob("*.png"))
    ]
    folder.mkdir(parents=True)
    for i in range(count):
        img = photos[i % len(photos)]
        y, x = rng.integers(0, img.shape[0] - size), rng.integers(0, img.shape[1] - size)
        Image.fromarray(img[y : y + size, x : x + size]).save(folder / f"{i:04d}.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--model", default=None)
    ap.add_argument("--json", default=str(HERE / "batch.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in"
        make_folder(src, args.count, args.size)
        model = SRGAN.from_pretrained(args.model)
        model.upscale(Image.open(next(src.glob("*.png"))))  # warm-up
        loop_out = Path(tmp) / "loop"
        loop_out.mkdir()
        t0 = time.perf_counter()
        for p in sorted(src.glob("*.png")):
            model.upscale(Image.open(p)).save(loop_out / p.name)
        loop_s = time.perf_counter() - t0
        cli_args = ["upscale", str(src), "-o", str(Path(tmp) / "cli"), "-q"]
        if args.model:
            cli_args += ["--model", args.model]
        t0 = time.perf_counter()
        code = cli_main(cli_args)
        cli_s = time.perf_counter() - t0  # includes loading the model once
        assert code == 0
    report = {
        "count": args.count,
        "size": args.size,
        "loop_images_per_s": args.count / loop_s,
        "cli_images_per_s": args.count / cli_s,
        "speedup": loop_s / cli_s,
    }
    print(
        f"{args.count} photos of {args.size}x{args.size}: plain loop {report['loop_images_per_s']:.2f} img/s, "
        f"srgan upscale {report['cli_images_per_s']:.2f} img/s (x{report['speedup']:.2f})"
    )
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
