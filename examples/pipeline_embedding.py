"""Embed srgan in a PyTorch / numpy pipeline.

Two patterns:

1. Tensor batches. ``SRGAN.upscale_tensor`` takes an RGB batch (N, 3, H, W) float in [0, 1] on any device and
   returns (N, 3, s*H, s*W) float32 on the CPU, clamped to [0, 1]. Here the result feeds the preprocessing a
   classifier would apply: centre crop to a square, resize to 224 x 224, ImageNet normalisation.
2. numpy round trip. ``SRGAN.upscale`` returns the same kind of object it was given: a uint8 (H, W, 3) array comes
   back as a uint8 (s*H, s*W, 3) array, a float32 (H, W) grey array as a float32 (s*H, s*W) array.

Usage:
    python examples/pipeline_embedding.py photo1.jpg photo2.png --model runs/srgan --tile 256
    python examples/pipeline_embedding.py --demo --model /path/to/model     # small synthetic inputs

Without ``--model`` the packaged default model is used.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from srgan import SRGAN, SRGANError

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def upscale_for_classifier(
    model: SRGAN, batch: torch.Tensor, *, size: int = 224, tile: int | None = None
) -> torch.Tensor:
    """Super-resolve a batch, then prepare it the way an ImageNet classifier expects.

    Args:
        model: the loaded SRGAN.
        batch: (N, 3, H, W) float in [0, 1], any device.
        size: side of the square classifier input.
        tile: tile size in input pixels (None: automatic). Tiles overlap by the generator's receptive field, so the
            result does not depend on it; it only bounds memory.

    Returns:
        (N, 3, size, size) float32, normalised with the ImageNet mean and std, on ``batch``'s device.
    """
    sr = model.upscale_tensor(batch, tile=tile)  # (N, 3, sH, sW) float32 on the CPU, in [0, 1]
    sr = sr.to(batch.device)
    h, w = sr.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = sr[:, :, top : top + side, left : left + side]
    resized = F.interpolate(square, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return (resized - IMAGENET_MEAN.to(batch.device)) / IMAGENET_STD.to(batch.device)


def load_rgb(path: str) -> torch.Tensor:
    """An image file as a (1, 3, H, W) float tensor in [0, 1]."""
    with Image.open(path) as image:
        rgb = np.array(image.convert("RGB"))  # a writable copy
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div(255)


def demo_batch() -> torch.Tensor:
    """Two small synthetic RGB images, (2, 3, 20, 28) float in [0, 1]."""
    y, x = torch.meshgrid(torch.linspace(0, 1, 20), torch.linspace(0, 1, 28), indexing="ij")
    first = torch.stack([x, y, (x + y) / 2])
    second = torch.stack([1 - x, (x * 6).sin().abs(), y])
    return torch.stack([first, second])


def numpy_round_trip(model: SRGAN) -> None:
    """The same kind in and out: dtype, layout and channel count are kept."""
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)  # (H, W, 3) uint8
    grey = rng.random((12, 16), dtype=np.float32)  # (H, W) float32 in [0, 1]
    rgba = np.dstack([colour, np.full((12, 16), 255, np.uint8)])  # alpha is upscaled separately (bicubic)
    for name, array in (("uint8 RGB", colour), ("float32 grey", grey), ("uint8 RGBA", rgba)):
        out = model.upscale(array)
        print(f"numpy {name}: {array.shape} {array.dtype} -> {out.shape} {out.dtype}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Use srgan inside a tensor / numpy pipeline.")
    parser.add_argument("images", nargs="*", help="image files (each is processed as a batch of one)")
    parser.add_argument("--model", default=None, help="name, checkpoint file, folder or https URL (default: packaged)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.add_argument("--tile", type=int, default=None, help="tile size in input pixels (default: automatic)")
    parser.add_argument("--demo", action="store_true", help="run on small synthetic images")
    args = parser.parse_args(argv)
    if not args.demo and not args.images:
        parser.error("give image files, or --demo")

    try:
        model = SRGAN.from_pretrained(args.model, device=args.device)
    except SRGANError as e:
        print(f"cannot load the model: {e}", file=sys.stderr)
        return 2
    print(f"loaded {model}")

    batches = [("demo batch", demo_batch())] if args.demo else [(p, load_rgb(p)) for p in args.images]
    for name, batch in batches:
        features = upscale_for_classifier(model, batch, tile=args.tile)
        print(f"{name}: {tuple(batch.shape)} -> classifier input {tuple(features.shape)} {features.dtype}")

    if args.demo:
        # Tiling bounds memory without changing the result: compare a tiled run with an untiled one.
        batch = demo_batch()
        whole = model.upscale_tensor(batch, tile=max(batch.shape[-2:]))
        tiled = model.upscale_tensor(batch, tile=8)
        print(f"tile=8 vs one tile: max abs difference {float((whole - tiled).abs().max()):.3g}")
        numpy_round_trip(model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
