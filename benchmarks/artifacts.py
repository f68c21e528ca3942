"""GAN artifact check: fixed 4x4 patterns (checkerboard, striations) and colour shifts, per model and image.

    python benchmarks/artifacts.py --data ../shared/data/Set14 examples/images \
        --model srresnet-x4 --model srgan-x4 [--json benchmarks/artifacts.json]

Each HR image is modcropped, downscaled x4 with the benchmark's bicubic (rounded to 8 bits) and upscaled by each
model. Two numbers per image, from the error ``E = SR - HR`` on 8-bit levels:

- **pattern**: the largest deviation, over the 16 pixel phases ``(y mod 4, x mod 4)``, of the mean of Y(E) at that
  phase from the mean over all phases. A x4 generator with checkerboard or striation artifacts (from its two
  PixelShuffle stages) adds the same offset to every pixel of a phase, so its mean survives averaging over the
  image while content errors cancel. Bicubic shows what image content alone gives (about 0.3 levels).
- **colour shift**: the largest absolute mean of E over the image, over R, G and B.

Values under one 8-bit level are not visible; the table gives the median and the maximum over images.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from srgan import SRGAN
from srgan.degradation import bicubic_downsample, modcrop, quantize
from srgan.training.data import find_images, read_rgb

Y_WEIGHTS = torch.tensor([65.481, 128.553, 24.966], dtype=torch.float64).view(1, 3, 1, 1) / 255


def pattern_amplitude(err: torch.Tensor) -> float:
    """Largest per-phase mean offset of Y(err) over the 4x4 pixel phases; ``err`` is (1, 3, H, W) in 8-bit levels."""
    y = (err * Y_WEIGHTS).sum(1)[0]
    means = torch.stack([y[i::4, j::4].mean() for i in range(4) for j in range(4)])
    return float((means - means.mean()).abs().max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", required=True, help="folders of HR images")
    ap.add_argument("--model", action="append", required=True, help="registered name, file or folder; repeat")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    models = {m: SRGAN.from_pretrained(m, dtype=torch.float32) for m in args.model}
    results: dict[str, dict[str, dict[str, float]]] = {name: {} for name in ["bicubic", *models]}
    for path in find_images(args.data):
        hr = modcrop(read_rgb(path), 4).double().unsqueeze(0) / 255
        lr = quantize(bicubic_downsample(hr, 4))
        outputs = {"bicubic": quantize(F.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False))}
        for name, model in models.items():
            outputs[name] = quantize(model.upscale_tensor(lr.float()).double())
        for name, sr in outputs.items():
            err = (sr - hr) * 255
            results[name][path.name] = {
                "pattern": pattern_amplitude(err),
                "colour_shift": float(err.mean(dim=(0, 2, 3)).abs().max()),
            }
    print("| model | pattern median | pattern max | colour shift median | colour shift max |")
    print("|---|---:|---:|---:|---:|")
    for name, per_image in results.items():
        pat = np.array([r["pattern"] for r in per_image.values()])
        col = np.array([r["colour_shift"] for r in per_image.values()])
        print(f"| {name} | {np.median(pat):.2f} | {pat.max():.2f} | {np.median(col):.2f} | {col.max():.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
