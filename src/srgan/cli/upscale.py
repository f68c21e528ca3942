"""``srgan upscale``: upscale image files and folders; one process per GPU under torchrun."""

from __future__ import annotations

import argparse
import logging
import math
import re
import sys
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from .._image import IMAGE_EXTENSIONS, SAVE_FORMATS, is_image_name, open_image, output_format, read_software, save_image
from .._prefetch import prefetch
from .._version import __version__
from ..errors import ConfigError, SRGANError
from ..runtime import torchrun_env
from ._common import MODEL_HELP, describe, iter_inputs, positive_int

__all__ = ["OUTPUT_SOFTWARE", "add_parser", "run"]

logger = logging.getLogger(__name__)

OUTPUT_SOFTWARE = f"srgan upscale {__version__}"
"""The EXIF ``Software`` tag of every output of ``srgan upscale`` (PNG, JPEG, WebP, TIFF, AVIF): how a later run
recognises its outputs in a folder and never takes them as inputs."""

# NAME_xF: the names srgan upscale gives its outputs (F as formatted by f"{scale:g}": 4, 1.5, 0.25, 1e-05...).
_OUTPUT_NAME = re.compile(r"(?P<origin>.+)_x\d+(?:\.\d+)?(?:e[+-]?\d+)?")


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
    if single_file_out and out is not None:
        return out
    if fmt:
        suffix = f".{fmt.lower()}"
    elif src.suffix.lower() in SAVE_FORMATS and src.suffix.lower() != ".gif":
        suffix = src.suffix
    else:  # GIF (256 colours) and formats srgan does not write: PNG
        suffix = ".png"
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


def _resolved(path: Path) -> Path:
    """``path.resolve()``, or the absolute path where that fails (a symbolic link loop raises RuntimeError)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def _is_inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _inputs(args: Sequence[str], out: Path | None) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """(input file, relative path) of every argument, and the outputs of earlier runs left out of folder scans.

    A file named as an argument is always an input. In a folder, a file where this run writes its outputs (beside
    the inputs, or under ``-o``) is left out when it is an output of ``srgan upscale``: its EXIF ``Software`` tag is
    :data:`OUTPUT_SOFTWARE`, or it is named ``NAME_xF.EXT`` beside an image ``NAME.*``. So a re-run never upscales
    its own outputs again (``a_x4_x4.png``).
    """
    files: list[tuple[Path, Path]] = []
    outputs: list[Path] = []
    for arg in args:
        root = Path(arg)
        if not root.is_dir():
            files.extend(iter_inputs([arg]))
            continue
        scanned = list(iter_inputs([arg]))
        area = _resolved(out if out is not None else root)
        stems = {(f.parent, f.stem) for f, _ in scanned}
        for f, rel in scanned:
            if _is_inside(_resolved(f), area) and _is_output(f, stems):
                outputs.append(f)
            else:
                files.append((f, rel))
    return files, outputs


def _is_output(path: Path, stems: set[tuple[Path, str]]) -> bool:
    """Whether ``path`` was written by ``srgan upscale`` (by its name beside its input, or by its metadata)."""
    named = _OUTPUT_NAME.fullmatch(path.stem)
    if named is not None and (path.parent, named["origin"]) in stems:
        return True
    software = read_software(path)
    return software is not None and software.startswith("srgan upscale")


def _usage_error(error: SRGANError) -> int:
    """Report a bad argument (exit status 2): ``srgan: ErrorName: message``."""
    print(f"srgan: {type(error).__name__}: {error}", file=sys.stderr)
    return 2


def _check_output(out: Path | None, n_files: int, fmt: str | None) -> bool:
    """Whether ``-o`` names one output file (else a folder, or None); ConfigError when it cannot be honoured."""
    if fmt is not None:
        output_format(f"x.{fmt}")  # a --format this Pillow cannot write
    if out is None or not is_image_name(out) or out.is_dir():
        return False
    if n_files > 1:
        raise ConfigError(
            f"-o {out} names one image file, but there are {n_files} inputs; expected a folder: give -o a folder"
        )
    out_fmt = output_format(out)  # refuses names whose format srgan cannot write (e.g. .psd)
    if fmt is not None and output_format(f"x.{fmt}") != out_fmt:
        raise ConfigError(
            f"-o {out} names a {out_fmt} file but --format {fmt} asks for {output_format(f'x.{fmt}')}; expected "
            f"them to agree: name the file {out.with_suffix('.' + fmt)}, or leave out --format"
        )
    return True


def run(args: argparse.Namespace) -> int:
    """Run ``srgan upscale``: 0 when every image was written (or nothing was left to do), 1 when some failed, 2 on a
    bad argument (no input, an -o or --format that cannot be honoured) or a model that cannot be loaded."""
    from tqdm import tqdm

    from ..pipeline import DEFAULT_MAX_OUTPUT_PIXELS, SRGAN

    out = Path(args.output) if args.output else None
    files, earlier_outputs = _inputs(args.inputs, out)
    if earlier_outputs:
        logger.info("not taken as inputs (outputs of srgan upscale): %s", ", ".join(map(str, earlier_outputs)))
    if not files:
        if earlier_outputs:  # a folder holding only outputs: nothing left to do
            if not args.quiet:
                print(f"upscaled 0 of 0 images ({len(earlier_outputs)} srgan outputs are not inputs)")
            return 0
        exts = " ".join(sorted(IMAGE_EXTENSIONS))
        return _usage_error(
            ConfigError(
                f"no input images found in {' '.join(args.inputs)}: expected image files, or folders holding "
                f"{exts} files; check the paths"
            )
        )
    try:
        single_file_out = _check_output(out, len(files), args.format)
    except ConfigError as e:
        return _usage_error(e)
    rank, world, device = _shard(args.device)
    if world > 1:  # under torchrun: this process takes every world-th file, on its own GPU
        files = files[rank::world]
    try:
        model = SRGAN.from_pretrained(args.model, device=device, dtype=args.dtype)
    except SRGANError as e:
        print(f"srgan: cannot load model: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    inputs = {_resolved(src) for src, _ in files}
    failures: list[tuple[Path, Exception]] = []
    done = skipped = 0
    jobs: list[tuple[Path, Path]] = []
    for src, rel in files:
        final_scale = model.scale if args.outscale is None else args.outscale
        dest = _output_path(src, rel, out, single_file_out, final_scale, args.format)
        if _resolved(dest) in inputs:
            failures.append((src, ConfigError(f"output {dest} would overwrite an input; choose another -o")))
        elif dest.exists() and args.skip_existing:
            skipped += 1  # resuming a half-done folder
        elif dest.exists() and not args.overwrite:
            failures.append(
                (src, FileExistsError(f"output {dest} exists; pass --overwrite to replace it or --skip-existing"))
            )
        else:
            jobs.append((src, dest))
    for src, error in failures:
        print(describe(src, error), file=sys.stderr)

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
                saves.append((src, pool.submit(save_image, result, dest, software=OUTPUT_SOFTWARE)))
            except (SRGANError, OSError, ValueError) as e:
                failures.append((src, e))
                tqdm.write(describe(src, e), file=sys.stderr)
            del image  # release the decoded image before waiting for the next one
            bar.update(1)
        for src, fut in saves:
            try:
                fut.result()
                done += 1
            except (SRGANError, OSError, ValueError) as e:
                failures.append((src, e))
                print(describe(src, e), file=sys.stderr)
    bar.close()
    if not args.quiet:
        extra = (f", {skipped} already done" if skipped else "") + (f", {len(failures)} failed" if failures else "")
        if earlier_outputs:
            extra += f" ({len(earlier_outputs)} srgan outputs in the folders are not inputs)"
        print(f"upscaled {done} of {len(files)} images{extra}")
    return 1 if failures else 0
