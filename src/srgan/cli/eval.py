"""``srgan-eval``: PSNR / SSIM / NIQE of models on folders of HR images (see :func:`srgan.evaluation.evaluate`)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from .._files import atomic_write_text
from ..errors import SRGANError
from ..evaluation import evaluate

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``srgan-eval`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="srgan-eval",
        description="PSNR / SSIM (Y channel, border = scale) and NIQE of SR models on folders of HR images, "
        "with the bicubic baseline.",
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME|PATH",
        help="registered name, checkpoint file or folder, or URL; repeat for several models",
    )
    parser.add_argument("--data", nargs="+", required=True, metavar="DIR", help="one folder of HR images per dataset")
    parser.add_argument("--scale", type=int, default=4, help="upscaling factor and border removed (default: 4)")
    parser.add_argument("--niqe-params", metavar="FILE", help="NIQE pristine model (niqe_pris_params.npz)")
    parser.add_argument("--include-hr", action="store_true", help="add an HR row with the ground truth's NIQE")
    parser.add_argument("--no-bicubic", action="store_true", help="leave out the bicubic baseline rows")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.add_argument(
        "--self-ensemble",
        action="store_true",
        help="average the 8 flips/transposes of each input (8x the time; rows named 'NAME (self-ensemble)')",
    )
    parser.add_argument("--json", metavar="OUT", help="write the report with per-image results to this JSON file")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``srgan-eval`` console script: prints a markdown table; 2 on a usage or data error."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if args.include_hr and not args.niqe_params:
        parser.error("--include-hr reports NIQE only: give --niqe-params FILE too")
    if not args.model and args.no_bicubic and not args.include_hr:
        parser.error("nothing to evaluate: give --model, or leave out --no-bicubic")
    try:
        report = evaluate(
            args.model,
            args.data,
            scale=args.scale,
            niqe_params=args.niqe_params,
            include_bicubic=not args.no_bicubic,
            include_hr=args.include_hr,
            device=args.device,
            self_ensemble=args.self_ensemble,
        )
    except (SRGANError, OSError) as e:
        print(f"srgan-eval: {e}", file=sys.stderr)
        return 2
    print(report.format_table())
    if args.json:
        out = Path(args.json)
        try:
            atomic_write_text(out, report.to_json() + "\n")
        except OSError as e:
            print(f"srgan-eval: cannot write {out}: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
