"""Package trained generator weights for the wheel: fp16 storage, metadata, sha256.

    python scripts/package_weights.py runs/srresnet-x4/best_ema.pt src/srgan/weights/srresnet-x4.pt \
        --meta '{"loss": "L1", "steps": 11000}'

Prints the sha256 to put in ``srgan/weights.py``'s registry entry.
"""

from __future__ import annotations

import argparse
import json

import torch

from srgan.hub import sha256_file
from srgan.weights import Checkpoint, build_generator, infer_config, load_checkpoint, save_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", help="srgan checkpoint or plain Generator state dict")
    ap.add_argument("dest", help="output .pt file")
    ap.add_argument("--meta", default="{}", help="JSON metadata stored in the file")
    args = ap.parse_args()
    try:
        ckpt = load_checkpoint(args.source)
    except Exception:  # a plain Generator state dict (e.g. the "ema" entry of an older training script)
        state = torch.load(args.source, map_location="cpu", weights_only=True)
        ckpt = Checkpoint(config=infer_config(state), state_dict=state, meta={})
    generator = build_generator(ckpt, source=args.source)
    meta = {**ckpt.meta, **json.loads(args.meta)}
    path = save_checkpoint(args.dest, generator, meta=meta, half=True)
    # fp16 storage must not change the model materially: report the max weight change.
    back = load_checkpoint(path).state_dict
    err = max(
        float((back[k] - v.float()).abs().max() / v.float().abs().max().clamp_min(1e-12))
        for k, v in ckpt.state_dict.items()
        if v.is_floating_point()
    )
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB), max relative fp16 rounding per tensor {err:.1e}")
    print(f"sha256 {sha256_file(path)}")


if __name__ == "__main__":
    main()
