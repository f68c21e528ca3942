"""The ``srgan`` command line: ``srgan upscale``, ``compare``, ``export``, ``models``, ``srgan --version``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from . import hub
from . import weights as _weights
from ._files import mkstemp
from ._image import IMAGE_EXTENSIONS, open_image
from ._version import __version__
from .errors import SRGANError

__all__ = ["main", "build_parser"]

logger = logging.getLogger(__name__)

_DONE: Future[Image.Image] = Future()

_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".bmp": "BMP",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".gif": "PNG",
    ".ppm": "PPM",
    ".pgm": "PPM",
}


def _iter_inputs(inputs: Sequence[str]) -> Iterator[tuple[Path, Path]]:
    """(file, path relative to its root) for every file argument and every image under every folder."""
    for arg in inputs:
        p = Path(arg)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS:
                    yield f, f.relative_to(p)
        else:
            yield p, Path(p.name)


def _output_path(src: Path, rel: Path, out: Path | None, single_file_out: bool, scale: int, fmt: str | None) -> Path:
    suffix = f".{fmt.lower()}" if fmt else (src.suffix if src.suffix.lower() != ".gif" else ".png")
    if single_file_out and out is not None:
        return out
    name = f"{rel.stem}_x{scale}{suffix}"
    if out is None:
        return src.with_name(name)
    return out / rel.parent / name


def _fit_mode(img: Image.Image, fmt: str) -> Image.Image:
    """Convert modes a format cannot store: 16-bit/float grey to 8-bit (or 16-bit PNG), alpha dropped for JPEG."""
    out = img
    if img.mode == "F":
        arr = np.clip(np.asarray(img, dtype=np.float64), 0.0, 1.0)
        out = (
            Image.fromarray((arr * 65535).round().astype(np.uint16))
            if fmt in ("PNG", "TIFF")
            else Image.fromarray((arr * 255).round().astype(np.uint8))
        )
    elif img.mode in ("I;16", "I") and fmt not in ("PNG", "TIFF"):
        arr16 = np.asarray(img, dtype=np.float64)
        out = Image.fromarray((arr16 / 257.0).round().clip(0, 255).astype(np.uint8))
    elif fmt == "JPEG" and img.mode not in ("RGB", "L", "CMYK"):
        out = img.convert("RGB")
    elif fmt == "BMP" and img.mode in ("LA", "RGBA"):
        out = img.convert("RGB" if img.mode == "RGBA" else "L")
    if out is not img:
        for key in ("icc_profile", "exif"):
            if img.info.get(key):
                out.info[key] = img.info[key]
    return out


def _save_atomic(img: Image.Image, dest: Path) -> None:
    """Save to a temporary name beside ``dest`` and rename, so a failure never leaves a partial file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fmt = _FORMATS.get(dest.suffix.lower(), "PNG")
    img = _fit_mode(img, fmt)
    kwargs: dict[str, object] = {}
    icc = img.info.get("icc_profile")
    if icc and fmt in ("PNG", "JPEG", "WEBP", "TIFF"):
        kwargs["icc_profile"] = icc
    exif = img.info.get("exif")
    if exif and fmt in ("PNG", "JPEG", "WEBP", "TIFF"):
        kwargs["exif"] = exif
    if fmt == "JPEG":
        kwargs["quality"] = 95
    fd, tmp = mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as f:
            img.save(f, format=fmt, **kwargs)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _cmd_upscale(args: argparse.Namespace) -> int:
    from .pipeline import DEFAULT_MAX_OUTPUT_PIXELS, SRGAN

    files = list(_iter_inputs(args.inputs))
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
        dest = _output_path(src, rel, out, single_file_out, model.scale, args.format)
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

    def decode(src: Path) -> Image.Image:
        return open_image(src, max_pixels=DEFAULT_MAX_OUTPUT_PIXELS, scale=model.scale)

    # Decoding and encoding run in worker threads (Pillow releases the GIL) while the model runs here.
    bar = tqdm(total=len(jobs), unit="img", disable=not sys.stderr.isatty() or args.quiet)
    with ThreadPoolExecutor(max_workers=max(1, args.workers)) as pool:
        ahead = max(2, 2 * args.workers)
        decoded = [pool.submit(decode, src) for src, _ in jobs[:ahead]]
        saves: list[tuple[Path, Future[None]]] = []
        for k, (src, dest) in enumerate(jobs):
            if k + ahead < len(jobs):
                decoded.append(pool.submit(decode, jobs[k + ahead][0]))
            try:
                result = model.upscale(decoded[k].result(), tile=args.tile, self_ensemble=args.self_ensemble)
                saves.append((src, pool.submit(_save_atomic, result, dest)))
            except (SRGANError, OSError, ValueError) as e:
                failures.append((src, str(e)))
                tqdm.write(_describe(src, e), file=sys.stderr)
            decoded[k] = _DONE  # release the decoded image
            bar.update(1)
        for src, fut in saves:
            try:
                fut.result()
                done += 1
            except (SRGANError, OSError, ValueError) as e:
                failures.append((src, str(e)))
                print(_describe(src, e), file=sys.stderr)
    bar.close()
    if not args.quiet:
        extra = (f", {skipped} already done" if skipped else "") + (f", {len(failures)} failed" if failures else "")
        print(f"upscaled {done} of {len(files)} images{extra}")
    return 1 if failures else 0


def _shard(device: str) -> tuple[int, int, str]:
    """(rank, world size, device) from torchrun's environment: one process per GPU, each on cuda:LOCAL_RANK."""
    try:
        rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        return 0, 1, device
    if world > 1 and device == "auto" and torch.cuda.is_available():
        device = f"cuda:{local % torch.cuda.device_count()}"
    return rank, max(1, world), device


def _describe(src: Path, error: BaseException) -> str:
    """One line per failed file, always starting with ``srgan: PATH:`` (easy to grep)."""
    return f"srgan: {src}: {error}"


def _cmd_models(args: argparse.Namespace) -> int:
    print(f"cache folder: {hub.cache_dir()}")
    entries = _weights.list_models()
    if not entries:
        print("no registered models")
    for e in entries:
        default = " (default)" if e.name == _weights.DEFAULT_MODEL else ""
        where = "packaged" if e.file else e.url
        print(f"{e.name}{default}: x{e.config.scale}, {e.description} [{where}]")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import export_onnx, export_torchscript
    from .pipeline import SRGAN

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


def _cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare
    from .pipeline import SRGAN

    specs: list[str | None] = args.model or [None]  # None: the packaged default
    names = [spec or _weights.DEFAULT_MODEL or "default" for spec in specs]
    try:
        models = [SRGAN.from_pretrained(spec, device=args.device, dtype=args.dtype) for spec in specs]
    except SRGANError as e:
        print(f"srgan: cannot load model: {e}", file=sys.stderr)
        return 2
    sources = [src for src, _ in _iter_inputs(args.inputs)]
    if not sources:
        print(f"srgan: no image files in {' '.join(args.inputs)}", file=sys.stderr)
        return 2
    out = Path(args.output)
    single_file = len(sources) == 1 and out.suffix.lower() in _FORMATS
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
            _save_atomic(result.image, dest)
        except (SRGANError, OSError) as e:
            print(_describe(src, e), file=sys.stderr)
            failures += 1
            continue
        if not args.quiet:
            left, top, size = result.box
            print(f"{src} -> {dest} (region left={left} top={top} size={size} of the x{models[0].scale} output)")
    return 1 if failures else 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="srgan", description="Photo-realistic single-image super-resolution.")
    parser.add_argument("--version", action="version", version=f"srgan {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upscale", help="upscale image files or folders")
    up.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders (searched recursively)")
    up.add_argument(
        "-o", "--output", help="output file (one input) or folder; default: beside each input, named NAME_x4.EXT"
    )
    up.add_argument(
        "--model",
        default=None,
        help="registered name, checkpoint file, folder or https URL (default: the packaged default model)",
    )
    up.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    up.add_argument(
        "--dtype",
        default=None,
        help="fp32, fp16 or bf16 (default: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32)",
    )
    up.add_argument("--tile", type=_positive_int, default=None, help="tile size in input pixels (default: automatic)")
    up.add_argument(
        "--self-ensemble",
        action="store_true",
        help="average the 8 flips/transposes of each image (8x slower; +0.1-0.2 dB PSNR with srresnet-x4)",
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
    up.add_argument("--workers", type=_positive_int, default=2, help="threads decoding and encoding images (default 2)")
    up.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    up.set_defaults(func=_cmd_upscale)
    ex = sub.add_parser(
        "export", help="write a model as ONNX or TorchScript (BatchNorm folded; any batch, height and width)"
    )
    ex.add_argument(
        "--model",
        default=None,
        help="registered name, checkpoint file, folder or https URL (default: the packaged default model)",
    )
    ex.add_argument("--format", choices=["onnx", "torchscript"], required=True, help="file format")
    ex.add_argument("-o", "--output", required=True, help="output file, e.g. model.onnx or model.pt")
    ex.add_argument("--opset", type=_positive_int, default=17, help="ONNX opset version (default: 17)")
    ex.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    ex.set_defaults(func=_cmd_export)
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
        "--crop-size", type=_positive_int, default=128, help="side of the automatic region, output px (default 128)"
    )
    cmp.add_argument("--zoom", type=_positive_int, default=2, help="nearest-neighbour enlargement (default 2)")
    cmp.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    cmp.add_argument("--dtype", default=None, help="fp32, fp16 or bf16 (default: as srgan upscale)")
    cmp.add_argument("-q", "--quiet", action="store_true", help="no summary lines")
    cmp.set_defaults(func=_cmd_compare)
    models = sub.add_parser("models", help="list known weights and the cache folder")
    models.set_defaults(func=_cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``srgan`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
