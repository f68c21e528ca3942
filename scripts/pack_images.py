"""Pack training images as lossless WebP files for carrying to a remote GPU machine (one folder, one file each).

The Trainer makes the LR images itself (``degrade_whole_images`` in the recipes), so only the HR images travel,
cropped to a multiple of 4 as the Trainer crops them. Lossless WebP keeps every pixel (checked on write) at
about two thirds of PNG's size.

    python scripts/pack_images.py ../shared/data/T91 ../shared/data/BSDS200 --out .gpu/train
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from srgan.degradation import modcrop
from srgan.training.data import find_images, read_rgb


def pack_one(src: Path, out: Path) -> Path:
    hr = modcrop(read_rgb(src), 4).permute(1, 2, 0).contiguous().numpy()
    path = out / f"{src.parent.name}_{src.stem}.webp"
    Image.fromarray(hr).save(path, lossless=True, quality=100, method=3)
    with Image.open(path) as back:
        if not np.array_equal(np.asarray(back.convert("RGB")), hr):
            raise RuntimeError(f"lossless WebP round trip changed {path}")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", help="image folders (searched recursively)")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    files = find_images(a.folders)
    with ThreadPoolExecutor(a.workers) as ex:
        written = list(ex.map(lambda f: pack_one(f, out), files))
    print(f"packed {len(written)} images into {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
