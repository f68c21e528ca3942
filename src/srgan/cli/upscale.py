"""``srgan upscale``: upscale image files and folders; one process per GPU under torchrun."""

from __future__ import annotations

import argparse
import math
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from .._image import IMAGE_EXTENSIONS, open_image, save_image
from .._prefetch import prefetch
from ..errors import ConfigError, SRGANError
from ..runtime import torchrun_env
from ._common import MODEL_HELP, describe, iter_inputs, positive_int

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Add the ``upscale`` subcommand to ``sub`` (the parent parser's subparsers)."""
    up = sub.add_parser("upscale", help="upscale image files or folders")
    up.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders (searched recursively)")
    up.add_argument(
        "-o", "--output", help="output file (one input) or folder; default: beside each input, named NAME_x4.EXT"
    )
    up.add_argument("--model", default=None, help=MODEL_HELP)
    up.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    up.add_argument(
        "--dtype",
        default=None,
        help="fp32, fp16 or bf16 (default: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32)",
    )
    up.add_argument("--tile", type=positive_int, default=None, help="tile size in input pixels (default: automatic)")
    up.add_argument(
        "--self-ensemble",
        action="store_true",
        help="average the 8 flips/transposes of each image (8x slower; +0.1-0.2 dB PSNR with srresnet-x4)",
    )
    up.add_argument(
        "--outscale",
        type=_positive_float,
        default=None,
        metavar="F",
        help="final scale of the output (any number > 0, e.g. 2 or 1.5): the model's x4, then an antialiased "
        "bicubic resize to F times the input size; outputs named NAME_xF.EXT (default: the model's scale)",
    )
    up.add_argument(
        "--format",
        choices=["png", "jpg", "webp", "tif", "bmp"],
        default=None,
        help="output format (default: the input's)",
    )
    up.add_argument("--overwrite", action="store_true", help="replace existing output files")
    up.add_argument(
        "--skip-existing", action="store_true", help="skip inputs whose output exists (resume a half-done folder)"
    )
    up.add_argument("--workers", type=positive_int, default=2, help="threads decoding and encoding images (default 2)")
    up.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    up.set_defaults(func=run)


def _positive_float(text: str) -> float:
    """argparse type of ``--outscale``: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def _output_path(src: Path, rel: Path, out: Path | None, single_file_out: bool, scale: float, fmt: str | None) -> Path:
    suffix = f".{fmt.lower()}" if fmt else (src.suffix if src.suffix.lower() != ".gif" else ".png")
    if single_file_out and out is not None:
        return out
    name = f"{rel.stem}_x{scale:g}{suffix}"
    if out is None:
        return src.with_name(name)
    return out / rel.parent / name


def _shard(device: str) -> tuple[int, int, str]:
    """(rank, world size, device) from torchrun's environment: one process per GPU, each on cuda:LOCAL_RANK."""
    try:
        env = torchrun_env()
    except ConfigError:  # not integers: not started by torchrun, run as one process
        return 0, 1, device
    if env.world_size > 1 and device == "auto" and torch.cuda.is_available():
        device = f"cuda:{env.local_rank % torch.cuda.device_count()}"
    return env.rank, env.world_size, device


def run(args: argparse.Namespace) -> int:
    """Run ``srgan upscale``: 0 when every image was written, 1 when some failed, 2 on a usage error."""
    from tqdm import tqdm

    from ..pipeline import DEFAULT_MAX_OUTPUT_PIXELS, SRGAN

    files = list(iter_inputs(args.inputs))
    if not files:
        print("srgan: no input images found", file=sys.stderr)
        return 2
    rank, world, device = _shard(args.device)
    if world > 1:  # under torchrun: this process takes every world-th file, on its own GPU
        files = files[rank::world]
    out = Path(args.output) if args.output else None
    single_file_out = (
        out is not None and out.suffix.lower() in IMAGE_EXTENSIONS and len(files) == 1 and not out.is_dir()
    )
    if out is not None and out.suffix.lower() in IMAGE_EXTENSIONS and len(files) > 1:
        print(f"srgan: -o {out} looks like a file but there are {len(files)} inputs; give a folder", file=sys.stderr)
        return 2
    try:
        model = SRGAN.from_pretrained(args.model, device=device, dtype=args.dtype)
    except SRGANError as e:
        print(f"srgan: cannot load model: {e}", file=sys.stderr)
        return 2
    inputs = {src.resolve() for src, _ in files}
    failures: list[tuple[Path, str]] = []
    done = skipped = 0
    jobs: list[tuple[Path, Path]] = []
    for src, rel in files:
        final_scale = model.scale if args.outscale is None else args.outscale
        dest = _output_path(src, rel, out, single_file_out, final_scale, args.format)
        if dest.resolve() in inputs:
            failures.append((src, f"output {dest} would overwrite an input; choose another -o"))
        elif dest.exists() and args.skip_existing:
            skipped += 1  # resuming a half-done folder
        elif dest.exists() and not args.overwrite:
            failures.append((src, f"output {dest} exists; pass --overwrite to replace it or --skip-existing"))
        else:
            jobs.append((src, dest))
    for src, msg in failures:
        print(f"srgan: {src}: {msg}", file=sys.stderr)

    def decode(src: Path) -> Any:
        return open_image(src, max_pixels=DEFAULT_MAX_OUTPUT_PIXELS, scale=model.scale)

    # Decoding and encoding run in worker threads (Pillow releases the GIL) while the model runs here.
    bar = tqdm(total=len(jobs), unit="img", disable=not sys.stderr.isatty() or args.quiet)
    with ThreadPoolExecutor(max_workers=max(1, args.workers)) as pool:
        decoded = prefetch(decode, [src for src, _ in jobs], pool=pool, ahead=max(2, 2 * args.workers))
        saves: list[tuple[Path, Future[None]]] = []
        for (src, dest), image in zip(jobs, decoded, strict=True):
            try:
                result = model.upscale(
                    image.result(), tile=args.tile, self_ensemble=args.self_ensemble, outscale=args.outscale
                )
                saves.append((src, pool.submit(save_image, result, dest)))
            except (SRGANError, OSError, ValueError) as e:
                failures.append((src, str(e)))
                tqdm.write(describe(src, e), file=sys.stderr)
            del image  # release the decoded image before waiting for the next one
            bar.update(1)
        for src, fut in saves:
            try:
                fut.result()
                done += 1
            except (SRGANError, OSError, ValueError) as e:
                failures.append((src, str(e)))
                print(describe(src, e), file=sys.stderr)
    bar.close()
    if not args.quiet:
        extra = (f", {skipped} already done" if skipped else "") + (f", {len(failures)} failed" if failures else "")
        print(f"upscaled {done} of {len(files)} images{extra}")
    return 1 if failures else 0
