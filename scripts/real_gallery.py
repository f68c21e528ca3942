"""The README's real-photo gallery: low-quality inputs made from the sample photos, upscaled by each model.

Two inputs per photo, made the documented way (nothing random):

* ``real-fixed``: the evaluation chain of ``srgan-eval --degradation real-fixed`` (Gaussian blur sigma 1.2,
  MATLAB-style bicubic x1/4, Gaussian noise sigma 5/255 seeded by the photo's index, JPEG quality 60);
* ``phone``: a phone-sized downscale (x1/2, Pillow's antialiased bicubic) saved as a quality-25 JPEG, as images
  are after a messaging app; the central 80x64 pixels of it are shown.

Each row shows the input (nearest-neighbour enlarged), bicubic, then each model, all at x4.

    python scripts/real_gallery.py examples/images/chelsea.png examples/images/coffee.png -o docs/images \
        --model srgan-x4 --model srresnet-x4-real --model srgan-x4-real
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from srgan import SRGAN
from srgan.degradation import modcrop
from srgan.evaluation import contact_sheet, protocol_lr


def to_pil(x: torch.Tensor) -> Image.Image:
    return Image.fromarray((x[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy(), "RGB")


def phone_jpeg(photo: Image.Image, quality: int = 25) -> Image.Image:
    small = photo.resize((photo.width // 2, photo.height // 2), Image.Resampling.BICUBIC, reducing_gap=None)
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    decoded = Image.open(buffer).convert("RGB")
    left, top = (decoded.width - 80) // 2, (decoded.height - 64) // 2
    return decoded.crop((left, top, left + 80, top + 64))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photos", nargs="+", type=Path)
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--model", action="append", required=True, help="NAME or LABEL=FILE; repeat")
    a = ap.parse_args()
    models = {}
    for spec in a.model:
        label, _, source = spec.partition("=")
        models[label] = SRGAN.from_pretrained(source or label, device="cpu", dtype="fp32")
    a.output.mkdir(parents=True, exist_ok=True)
    for index, path in enumerate(a.photos):
        rgb = Image.open(path).convert("RGB")
        hr = modcrop(torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1), 4)[None].double()
        inputs = {
            "real-fixed": to_pil(protocol_lr(hr / 255.0, scale=4, degradation="real-fixed", index=index).float()),
            "phone": phone_jpeg(rgb),
        }
        for kind, lr in inputs.items():
            size = (lr.width * 4, lr.height * 4)
            panels = {
                "input": lr.resize(size, Image.Resampling.NEAREST),
                "bicubic": lr.resize(size, Image.Resampling.BICUBIC),
            }
            for label, model in models.items():
                panels[label] = model.upscale(lr)
            dest = a.output / f"{path.stem}_{kind}.png"
            contact_sheet(panels).save(dest)
            print("wrote", dest)


if __name__ == "__main__":
    main()
