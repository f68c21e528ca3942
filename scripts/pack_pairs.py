"""Pack a training set as lossless WebP HR/LR pairs for carrying to a remote GPU machine.

The LR images are made here once with the benchmark protocol's MATLAB-style bicubic (modcrop to 4, antialiased
x1/4, rounded to 8 bits), exactly as ``scripts/train_srresnet.py`` makes them, so the remote side needs no
degradation code. Lossless WebP keeps every pixel (checked on write) at about two thirds of PNG's size.

    python scripts/pack_pairs.py --data ../shared/data/T91 ../shared/data/BSDS200 --out .gpu/train
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_srresnet import EXTS

from srgan.degradation import imresize, modcrop, quantize


def pack_one(args: tuple[Path, Path]) -> str:
    src, out = args
    torch.set_num_threads(1)
    img = np.asarray(Image.open(src).convert("RGB"))
    hr = modcrop(torch.from_numpy(img.copy()).permute(2, 0, 1), 4)
    lr = torch.round(quantize(imresize(hr.double().unsqueeze(0) / 255, scale=0.25))[0] * 255).to(torch.uint8)
    for name, t in (("hr", hr), ("lr", lr)):
        arr = t.permute(1, 2, 0).contiguous().numpy()
        path = out / f"{src.parent.name}_{src.stem}_{name}.webp"
        Image.fromarray(arr).save(path, lossless=True, quality=100, method=3)
        if not np.array_equal(np.asarray(Image.open(path).convert("RGB")), arr):
            raise RuntimeError(f"lossless WebP round trip changed {path}")
    return src.name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    files = [p for d in a.data for p in sorted(Path(d).rglob("*")) if p.suffix.lower() in EXTS]
    with ProcessPoolExecutor(a.workers) as ex:
        for i, name in enumerate(ex.map(pack_one, [(f, out) for f in files]), 1):
            if i % 50 == 0:
                print(i, name, flush=True)
    print("packed", len(files), "images into", out)


if __name__ == "__main__":
    main()
