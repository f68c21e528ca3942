"""Peak resident memory of upscaling a large RGB image, each case in a fresh subprocess.

    python benchmarks/memory.py [--size 2048] [--model NAME|PATH] [--json benchmarks/memory.json]

Cases: the library's default ``SRGAN.upscale(PIL image)`` at ``--size`` (output 4x larger each way), and the
naive path (fp32 NCHW eager forward over the whole image) at smaller sizes, whose peak grows linearly with the
pixel count: the naive peak at ``--size`` is extrapolated from them (running it would exhaust this machine).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
from PIL import Image
from srgan import SRGAN
case, size, model_arg = sys.argv[1], int(sys.argv[2]), (sys.argv[3] or None)
model = SRGAN.from_pretrained(model_arg, device="cpu", dtype=None if case == "default" else "fp32")
rng = np.random.default_rng(0)
base = np.asarray(Image.open(sys.argv[4]).convert("RGB"))
reps = (size // base.shape[0] + 1, size // base.shape[1] + 1)
photo = np.ascontiguousarray(np.tile(base, (reps[0], reps[1], 1))[:size, :size])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
if case == "default":
    out = model.upscale(Image.fromarray(photo))
    shape = (out.height, out.width)
else:
    x = torch.from_numpy(photo).permute(2, 0, 1)[None].float().div(255)
    with torch.inference_mode():
        y = model.generator.eval()(x).clamp(0, 1)
    shape = tuple(y.shape[-2:])
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"case": case, "size": size, "output": list(shape), "seconds": seconds,
                  "peak_rss_mib": peak / 1024, "rss_before_mib": before / 1024}))
"""


def run(case: str, size: int, model: str | None) -> dict[str, object]:
    sample = str(HERE.parent / "examples" / "images" / "coffee.png")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, case, str(size), model or "", sample], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"{case} {size} failed:\n{proc.stderr}")
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--naive-sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--model", default=None)
    ap.add_argument("--json", default=str(HERE / "memory.json"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = [run("default", args.size, args.model)]
    rows += [run("naive", s, args.model) for s in args.naive_sizes]
    naive = [r for r in rows if r["case"] == "naive"]
    # Linear fit of peak RSS against input pixels, extrapolated to --size.
    (s1, m1), (s2, m2) = [(float(r["size"]) ** 2, float(r["peak_rss_mib"])) for r in naive[-2:]]  # type: ignore[arg-type]
    slope = (m2 - m1) / (s2 - s1)
    extrapolated = m2 + slope * (args.size**2 - s2)
    for r in rows:
        print(
            f"{r['case']:8s} {r['size']}^2 -> {r['output']}: peak RSS {float(r['peak_rss_mib']):.0f} MiB "  # type: ignore[arg-type]
            f"({float(r['seconds']):.1f} s)"
        )  # type: ignore[arg-type]
    print(f"naive at {args.size}^2 (extrapolated from {args.naive_sizes[-2:]}): about {extrapolated / 1024:.1f} GiB")
    report = {"rows": rows, "naive_extrapolated_mib": extrapolated, "wall_s": time.perf_counter() - t0}
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
