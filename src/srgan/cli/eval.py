"""``srgan-eval``: PSNR / SSIM / NIQE of models on folders of HR images (see :func:`srgan.evaluation.evaluate`),
or, with ``--no-reference``, NIQE and contact sheets of models on real LR images without ground truth
(:func:`srgan.evaluation.evaluate_no_reference`)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from .._files import atomic_write_text
from ..errors import SRGANError
from ..evaluation import BICUBIC, NIQE_NOTE, evaluate, evaluate_no_reference
from ._common import closed_pipe_exits_quietly

__all__ = ["build_parser", "main"]

NO_REFERENCE_JSON = "report.json"
"""The report's file name in the ``-o`` folder of ``--no-reference``."""


def build_parser() -> argparse.ArgumentParser:
    """The ``srgan-eval`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="srgan-eval",
        description="PSNR / SSIM (Y channel, border = scale) and NIQE of SR models on folders of HR images, "
        "with the bicubic baseline; or, with --no-reference, NIQE and side-by-side sheets of real LR images.",
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME|PATH",
        help="registered name, checkpoint file or folder, or URL; repeat for several models",
    )
    parser.add_argument("--data", nargs="+", metavar="DIR", help="one folder of HR images per dataset")
    parser.add_argument(
        "--no-reference",
        metavar="FOLDER",
        help="a folder of real LR images without ground truth: upscale each with bicubic and each --model "
        "(default: the packaged default model), write NIQE (with --niqe-params) and one contact sheet per image "
        "into -o OUT",
    )
    parser.add_argument(
        "-o", "--output", metavar="OUT", help=f"with --no-reference: the folder for {NO_REFERENCE_JSON} and sheets/"
    )
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
    parser.add_argument(
        "--degradation",
        default=None,
        metavar="SPEC",
        help="how each LR input is made from its HR image: bicubic (default: the standard protocol), real-fixed "
        "(blur 1.2, bicubic, noise 5/255 seeded per image, JPEG 60), jpeg:Q (bicubic then JPEG quality Q) or "
        "noise:S (bicubic then Gaussian noise sigma S/255)",
    )
    parser.add_argument("--json", metavar="OUT", help="write the report with per-image results to this JSON file")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    return parser


@closed_pipe_exits_quietly
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``srgan-eval`` console script: prints a markdown table; 2 on a usage or data error."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if args.no_reference is not None:
        return _no_reference(parser, args)
    if not args.data:
        parser.error("give --data DIR [DIR ...] (folders of HR images), or --no-reference FOLDER")
    if args.output:
        parser.error("-o/--output is for --no-reference; use --json OUT for the report")
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
            degradation=args.degradation or BICUBIC,
        )
    except (SRGANError, OSError) as e:
        print(f"srgan-eval: {e}", file=sys.stderr)
        return 2
    print(report.format_table())
    return _write_json(args.json, report.to_json()) if args.json else 0


def _no_reference(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    for given, flag in (
        (args.data, "--data"),
        (args.degradation, "--degradation"),
        (args.include_hr, "--include-hr"),
        (args.no_bicubic, "--no-bicubic"),
    ):
        if given:
            parser.error(f"{flag} does not apply to --no-reference (real LR images, no ground truth)")
    if not args.output:
        parser.error("--no-reference needs -o OUT: the folder for the report and the contact sheets")
    from ..weights import DEFAULT_MODEL

    models = args.model or ([DEFAULT_MODEL] if DEFAULT_MODEL else [])
    if not args.niqe_params:
        print("srgan-eval: NIQE skipped (no --niqe-params given); writing the contact sheets only", file=sys.stderr)
    out = Path(args.output)
    try:
        report = evaluate_no_reference(
            models,
            args.no_reference,
            scale=args.scale,
            niqe_params=args.niqe_params,
            out_dir=out,
            device=args.device,
            self_ensemble=args.self_ensemble,
        )
    except (SRGANError, OSError) as e:
        print(f"srgan-eval: {e}", file=sys.stderr)
        return 2
    print(report.format_table())
    if report.niqe_measured:
        print(f"\nNote: {NIQE_NOTE}")
    print(f"\n{len(report.sheets)} contact sheets in {out / 'sheets'}")
    text = report.to_json()
    status = _write_json(out / NO_REFERENCE_JSON, text)
    return _write_json(args.json, text) if args.json and status == 0 else status


def _write_json(path: str | Path, text: str) -> int:
    try:
        atomic_write_text(Path(path), text + "\n")
    except OSError as e:
        print(f"srgan-eval: cannot write {path}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
