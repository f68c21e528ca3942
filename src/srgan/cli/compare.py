"""``srgan compare``: side-by-side crops of bicubic, each model and the ground truth."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .. import weights as _weights
from .._image import SAVE_FORMATS, open_image, save_image
from ..errors import SRGANError
from ._common import describe, iter_inputs, positive_int

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Add the ``compare`` subcommand to ``sub`` (the parent parser's subparsers)."""
    cmp = sub.add_parser(
        "compare",
        help="side-by-side crops: bicubic | each model | ground truth",
        description="Downscale each photo x4 (the benchmark's bicubic), upscale it with bicubic and each --model, "
        "and save one picture with the same region of every result side by side, the original last. With "
        "--lr-input the inputs are upscaled as they are (no ground truth panel).",
    )
    cmp.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders (searched recursively)")
    cmp.add_argument(
        "--model",
        action="append",
        help="registered name, file, folder or URL; repeat to compare several (default: the default model)",
    )
    cmp.add_argument(
        "-o", "--output", required=True, help="output folder (NAME_compare.png), or a .png file for one input"
    )
    cmp.add_argument("--lr-input", action="store_true", help="the inputs are low-resolution: do not downscale")
    cmp.add_argument(
        "--crop", nargs=3, type=int, metavar=("LEFT", "TOP", "SIZE"), help="region in output pixels (default: auto)"
    )
    cmp.add_argument(
        "--crop-size", type=positive_int, default=128, help="side of the automatic region, output px (default 128)"
    )
    cmp.add_argument("--zoom", type=positive_int, default=2, help="nearest-neighbour enlargement (default 2)")
    cmp.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    cmp.add_argument("--dtype", default=None, help="fp32, fp16 or bf16 (default: as srgan upscale)")
    cmp.add_argument("-q", "--quiet", action="store_true", help="no summary lines")
    cmp.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``srgan compare``: 0 when every picture was written, 1 when some failed, 2 on a usage or load error."""
    from ..compare import compare
    from ..pipeline import SRGAN

    specs: list[str | None] = args.model or [None]  # None: the packaged default
    names = [spec or _weights.DEFAULT_MODEL or "default" for spec in specs]
    try:
        models = [SRGAN.from_pretrained(spec, device=args.device, dtype=args.dtype) for spec in specs]
    except SRGANError as e:
        print(f"srgan: cannot load model: {e}", file=sys.stderr)
        return 2
    sources = [src for src, _ in iter_inputs(args.inputs)]
    if not sources:
        print(f"srgan: no image files in {' '.join(args.inputs)}", file=sys.stderr)
        return 2
    out = Path(args.output)
    single_file = len(sources) == 1 and out.suffix.lower() in SAVE_FORMATS
    failures = 0
    for src in sources:
        dest = out if single_file else out / f"{src.stem}_compare.png"
        try:
            result = compare(
                open_image(src),
                models,
                names=names,
                from_hr=not args.lr_input,
                crop=(args.crop[0], args.crop[1], args.crop[2]) if args.crop else None,
                crop_size=args.crop_size,
                zoom=args.zoom,
            )
            save_image(result.image, dest)
        except (SRGANError, OSError) as e:
            print(describe(src, e), file=sys.stderr)
            failures += 1
            continue
        if not args.quiet:
            left, top, size = result.box
            print(f"{src} -> {dest} (region left={left} top={top} size={size} of the x{models[0].scale} output)")
    return 1 if failures else 0
