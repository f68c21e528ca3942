"""Upscale one image file with srgan.

Usage:
    python examples/upscale_image.py photo.jpg photo_x4.png
    python examples/upscale_image.py photo.jpg photo_x4.png --model runs/srgan --device cpu

``--model`` takes anything ``SRGAN.from_pretrained`` accepts: a registered name (``srgan models`` lists them), a
checkpoint file, a folder written by ``save_pretrained`` or ``srgan-train``, or an https URL. Without it the
packaged default model is used.

Smoke test on a small synthetic image (no input file needed):
    python examples/upscale_image.py --demo --model /path/to/model
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from srgan import SRGAN, SRGANError


def save_image(image: Image.Image, path: Path) -> None:
    """Save an upscaled image, keeping its ICC profile; JPEG gets an 8-bit image without alpha."""
    if path.suffix.lower() in (".jpg", ".jpeg"):
        if image.mode in ("RGBA", "LA"):
            image = image.convert(image.mode[:-1])  # JPEG has no alpha channel: drop it
        elif image.mode not in ("RGB", "L"):
            raise SystemExit(f"a {image.mode} image (16-bit or float) cannot be saved as JPEG: use .png or .tif")
    icc = image.info.get("icc_profile")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **({"icc_profile": icc} if icc else {}))


def demo_image(folder: Path) -> Path:
    """Write a small RGB gradient image and return its path."""
    y, x = np.mgrid[0:24, 0:32]
    rgb = np.stack([x * 8, y * 10, (x + y) * 4], axis=-1).astype(np.uint8)
    path = folder / "demo.png"
    Image.fromarray(rgb).save(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Upscale one image file with srgan.")
    parser.add_argument("input", nargs="?", type=Path, help="image file to upscale")
    parser.add_argument("output", nargs="?", type=Path, help="where to write the result (format from the extension)")
    parser.add_argument("--model", default=None, help="name, checkpoint file, folder or https URL (default: packaged)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.add_argument("--demo", action="store_true", help="upscale a small synthetic image instead of INPUT")
    args = parser.parse_args(argv)
    if not args.demo and (args.input is None or args.output is None):
        parser.error("give INPUT and OUTPUT, or --demo")

    try:
        model = SRGAN.from_pretrained(args.model, device=args.device)
    except SRGANError as e:
        print(f"cannot load the model: {e}", file=sys.stderr)
        return 2
    print(f"loaded {model}")

    with tempfile.TemporaryDirectory() as tmp:
        source = demo_image(Path(tmp)) if args.demo else args.input
        output = args.output or Path(tmp) / f"demo_x{model.scale}.png"
        try:
            # A path in gives a PIL image out: EXIF orientation applied, ICC profile kept, first frame only.
            result = model.upscale(source)
        except (SRGANError, OSError) as e:
            print(f"cannot upscale {source}: {e}", file=sys.stderr)
            return 1
        save_image(result, output)
        print(f"{source} -> {output} ({result.width}x{result.height}, mode {result.mode})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
