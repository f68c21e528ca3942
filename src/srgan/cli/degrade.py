"""``srgan degrade``: the LR image a model trained with a real-world degradation preset would see."""

from __future__ import annotations

import argparse
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .._image import SAVE_FORMATS, open_image, prepare, save_image
from ..degradation import PRESETS, RealDegradation
from ..errors import SRGANError
from ._common import iter_inputs, positive_int

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Add the ``degrade`` subcommand to ``sub`` (the parent parser's subparsers)."""
    p = sub.add_parser(
        "degrade",
        help="make the LR image a model trained with a degradation preset would see",
        description="Degrade each photo with Real-ESRGAN's second-order model (blur, resize, noise, JPEG, twice, "
        "then sinc and JPEG) and downscale it by --scale. A file gives a file (-o NAME.png), a folder gives a "
        "folder of PNGs with the same relative paths. The result is a function of the image, the preset, the seed "
        "and the file's path relative to its folder (so the images of a folder get different draws).",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders (searched recursively)")
    p.add_argument("-o", "--output", required=True, help="output folder, or an image file name for one input")
    p.add_argument(
        "--preset", choices=sorted(PRESETS), default="real", help="degradation ranges (default: real, Real-ESRGAN's)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random draws (default 0)")
    p.add_argument("--scale", type=positive_int, default=4, help="downscaling factor (default 4)")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary lines")
    p.set_defaults(func=run)


def _seed_for(seed: int, relative: Path) -> int:
    """The seed of one file: ``seed`` and its relative path hashed to 32 bits (what a CPU generator keeps), stable
    across runs and machines."""
    return zlib.crc32(f"{seed}:{relative.as_posix()}".encode())


def run(args: argparse.Namespace) -> int:
    """Run ``srgan degrade``: 0 when every image was written, 1 when some failed, 2 when none could be."""
    degrade = RealDegradation(args.preset, scale=args.scale)
    sources = list(iter_inputs(args.inputs))
    if not sources:
        print(f"srgan: no image files in {' '.join(args.inputs)}", file=sys.stderr)
        return 2
    out = Path(args.output)
    names_file = out.suffix.lower() in SAVE_FORMATS
    if names_file and len(sources) > 1:
        print(
            f"srgan: -o {out} names one file but there are {len(sources)} inputs; give a folder instead",
            file=sys.stderr,
        )
        return 2
    failures = 0
    for src, relative in sources:
        dest = out if names_file else (out / relative).with_suffix(".png")
        try:
            rgb = prepare(open_image(src)).rgb
            generator = torch.Generator().manual_seed(_seed_for(args.seed, relative))
            lr = degrade(rgb, generator=generator)[0]
            pixels = (lr * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
            save_image(Image.fromarray(np.ascontiguousarray(pixels)), dest)
        except (SRGANError, OSError) as e:
            print(f"srgan: {src}: {type(e).__name__}: {e}", file=sys.stderr)
            failures += 1
            continue
        if not args.quiet:
            h, w = rgb.shape[-2:]
            print(f"{src} -> {dest} ({w}x{h} -> {lr.shape[-1]}x{lr.shape[-2]}, preset {args.preset})")
    if failures == len(sources):
        return 2
    return 1 if failures else 0
