"""Keep every ``generator.pt`` a running ``srgan-train`` exports, and pack them into one compact file.

The Trainer overwrites ``OUTPUT_DIR/generator.pt`` at each validation of the GAN phase. This watcher copies each new
version (named by its GAN step) until STOP_FILE appears, then writes the latest ``--keep`` of them as fp16 state
dicts into one file: ``{"steps": [...], "state_dicts": {step: state_dict}, "meta": {step: meta}}``.

    python scripts/snapshot_generators.py runs/gan --out gan_snapshots.pt --stop-file /tmp/stop
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import torch

from srgan.weights import load_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir")
    ap.add_argument("--out", required=True)
    ap.add_argument("--stop-file", required=True)
    ap.add_argument("--keep", type=int, default=5)
    ap.add_argument("--interval", type=float, default=2.0)
    a = ap.parse_args()
    run, snaps = Path(a.run_dir), Path(a.run_dir + ".snapshots")
    snaps.mkdir(parents=True, exist_ok=True)
    seen = 0.0
    while True:
        stop = Path(a.stop_file).exists()
        src = run / "generator.pt"
        if src.exists() and src.stat().st_mtime > seen:
            time.sleep(0.5)  # the Trainer writes atomically; this only lets a burst of writes settle
            seen = src.stat().st_mtime
            try:
                step = load_checkpoint(src).meta["steps"]["gan"]
                shutil.copyfile(src, snaps / f"step{step:07d}.pt")
            except Exception as e:  # a watcher must outlive one bad read
                print("snapshot failed:", e, flush=True)
        if stop:
            break
        time.sleep(a.interval)
    files = sorted(snaps.glob("step*.pt"))[-a.keep :]
    pack: dict = {"steps": [], "state_dicts": {}, "meta": {}}
    for f in files:
        ck = load_checkpoint(f)
        step = ck.meta["steps"]["gan"]
        pack["steps"].append(step)
        pack["state_dicts"][step] = {k: v.half() if v.is_floating_point() else v for k, v in ck.state_dict.items()}
        pack["meta"][step] = ck.meta
    torch.save(pack, a.out)
    print("packed steps", pack["steps"], "into", a.out, flush=True)


if __name__ == "__main__":
    main()
