"""``srgan export``: write a model as ONNX or TorchScript."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import SRGANError
from ._common import MODEL_HELP, positive_int

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Add the ``export`` subcommand to ``sub`` (the parent parser's subparsers)."""
    ex = sub.add_parser(
        "export", help="write a model as ONNX or TorchScript (BatchNorm folded; any batch, height and width)"
    )
    ex.add_argument("--model", default=None, help=MODEL_HELP)
    ex.add_argument("--format", choices=["onnx", "torchscript"], required=True, help="file format")
    ex.add_argument("-o", "--output", required=True, help="output file, e.g. model.onnx or model.pt")
    ex.add_argument("--opset", type=positive_int, default=17, help="ONNX opset version (default: 17)")
    ex.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    ex.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``srgan export``: 0 on success, 1 when the file cannot be written, 2 on a usage or load error."""
    from ..export import export_onnx, export_torchscript
    from ..pipeline import SRGAN

    try:
        model = SRGAN.from_pretrained(args.model, device="cpu", dtype="fp32")
    except SRGANError as e:
        print(f"srgan: cannot load model: {e}", file=sys.stderr)
        return 2
    try:
        if args.format == "onnx":
            path = export_onnx(model, args.output, opset=args.opset)
        else:
            path = export_torchscript(model, args.output)
    except ImportError as e:
        print(f"srgan: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"srgan: cannot write {args.output}: {e}", file=sys.stderr)
        return 1
    if not args.quiet:
        s = model.scale
        print(
            f"wrote {path} ({args.format}): input (N, 3, H, W) float32 RGB in [0, 1], output (N, 3, {s}H, {s}W), "
            "not clamped"
        )
    return 0
