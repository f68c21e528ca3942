"""Pack a recipe run folder from a GPU lease for the trip back: fp16 generators, logs and metrics in tar files.

Each file that comes back from a lease is at most 16 MiB, so the stage outputs and the kept exports go in separate
tars: ``NAME.tar`` (each finished stage's generator.pt, metrics.jsonl, stage.json, config.json, train.log) and
``NAME_exports.tar`` (the last ``--exports`` kept exports of each phase).

    python scripts/gpu_pack.py /tmp/lease/mild "$OUT/mild"
"""

from __future__ import annotations

import argparse
import tarfile
from pathlib import Path

from srgan.weights import build_generator, load_checkpoint, save_checkpoint

LOGS = ("metrics.jsonl", "stage.json", "config.json", "train.log")


def half(src: Path, dest: Path) -> Path:
    ckpt = load_checkpoint(src)
    return save_checkpoint(dest, build_generator(ckpt, source=str(src)), meta=ckpt.meta, half=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="the recipe's --output-dir")
    ap.add_argument("dest", help="output path without extension")
    ap.add_argument("--exports", type=int, default=2, help="kept exports of each phase to include")
    a = ap.parse_args()
    name = Path(a.dest).name
    pack = a.run / "_pack"
    pack.mkdir(exist_ok=True)
    stages = sorted(p for p in a.run.glob("*/generator.pt") if p.parent.name not in ("exports", "_pack"))
    kept = sorted((a.run / "exports").glob("*.pt"))
    exports = [p for phase in ("pretrain", "gan") for p in [q for q in kept if q.name.startswith(phase)][-a.exports :]]
    for suffix, sources in (("", stages), ("_exports", exports)):
        with tarfile.open(f"{a.dest}{suffix}.tar", "w") as tar:
            for src in sources:
                arc = f"{src.parent.name}_{src.name}"
                tar.add(half(src, pack / arc), arcname=f"{name}/weights/{arc}")
            if not suffix:
                for p in a.run.rglob("*"):
                    if p.name in LOGS and "_pack" not in p.parts:
                        tar.add(p, arcname=f"{name}/{p.relative_to(a.run)}")
        size = Path(f"{a.dest}{suffix}.tar").stat().st_size / 2**20
        print(f"{a.dest}{suffix}.tar: {len(sources)} generators, {size:.1f} MiB")


if __name__ == "__main__":
    main()
