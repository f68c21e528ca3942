"""Peak resident memory of upscaling a large RGB image, each case in a fresh subprocess.

    python benchmarks/memory.py [--size 2048] [--large 4000x3000] [--model NAME|PATH] [--json benchmarks/memory.json]

Cases: the library's default ``SRGAN.upscale(PIL image)`` at ``--size`` (output 4x larger each way); the whole
``srgan upscale in.jpg -o out.jpg`` command on a photo-like ``--large`` JPEG (the sample photos tiled, resized and
noised, written to a temporary folder; ``--large 0`` skips it); and the naive path (fp32 NCHW eager forward over
the whole image) at smaller sizes, whose peak grows linearly with the pixel count: the naive peak at ``--size`` is
extrapolated from them (running it would exhaust this machine). Each row records the bound srgan promises
(:data:`srgan._scheduler.CPU_MEMORY_BOUND`, 2.5 GiB) and whether its peak stayed under it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BOUND_MIB = 2560.0  # srgan._scheduler.CPU_MEMORY_BOUND (2.5 GiB)

CHILD = r"""
import json, sys, time
import numpy as np, torch
from PIL import Image
from srgan import SRGAN
sys.path.insert(0, sys.argv[5])
from upscale import peak_rss_mib
case, size, model_arg = sys.argv[1], int(sys.argv[2]), (sys.argv[3] or None)
model = SRGAN.from_pretrained(model_arg, device="cpu", dtype=None if case == "default" else "fp32")
rng = np.random.default_rng(0)
base = np.asarray(Image.open(sys.argv[4]).convert("RGB"))
reps = (size // base.shape[0] + 1, size // base.shape[1] + 1)
photo = np.ascontiguousarray(np.tile(base, (reps[0], reps[1], 1))[:size, :size])
before = peak_rss_mib()
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
print(json.dumps({"case": case, "size": size, "output": list(shape), "seconds": seconds,
                  "peak_rss_mib": peak_rss_mib(), "rss_before_mib": before}))
"""


def run(case: str, size: int, model: str | None) -> dict[str, object]:
    sample = str(HERE.parent / "examples" / "images" / "coffee.png")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, case, str(size), model or "", sample, str(HERE)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"{case} {size} failed:\n{proc.stderr}")
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def large_photo(width: int, height: int, dest: Path) -> None:
    """A photo-like ``width`` x ``height`` JPEG: the sample photos mirrored side by side, resized up, with noise."""
    import numpy as np
    from PIL import Image

    parts = [
        np.asarray(Image.open(p).convert("RGB")) for p in sorted((HERE.parent / "examples" / "images").glob("*.png"))
    ]
    h = min(p.shape[0] for p in parts)
    row = np.concatenate([p[:h] for p in parts] + [p[:h, ::-1] for p in parts], axis=1)
    mosaic = np.concatenate([row, row[::-1]], axis=0)
    big = np.asarray(Image.fromarray(mosaic).resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    noise = np.random.default_rng(0).integers(-6, 7, size=big.shape, dtype=np.int16)
    Image.fromarray(np.clip(big + noise, 0, 255).astype(np.uint8)).save(dest, quality=92)


CLI_CHILD = r"""
import atexit, runpy, sys
sys.path.insert(0, sys.argv.pop(1))
report = sys.argv.pop(1)
from upscale import peak_rss_mib
atexit.register(lambda: open(report, "w").write(str(peak_rss_mib())))
sys.argv[0] = "srgan"
runpy.run_module("srgan.cli", run_name="__main__", alter_sys=True)
"""
"""Runs ``srgan.cli`` as ``python -m`` would and writes its peak RSS (VmHWM) at exit: ru_maxrss from wait4 would
include the parent's peak, which Linux carries over vfork + exec."""


def run_cli(width: int, height: int, model: str | None) -> dict[str, object]:
    """``srgan upscale in.jpg -o out.jpg`` (defaults) in a fresh process: its peak RSS (VmHWM at its exit)."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dest = Path(tmp) / "photo.jpg", Path(tmp) / "photo_x4.jpg"
        large_photo(width, height, src)
        report = Path(tmp) / "peak_rss_mib"
        cmd = [sys.executable, "-c", CLI_CHILD, str(HERE), str(report), "upscale", str(src), "-o", str(dest), "-q"]
        if model:
            cmd += ["--model", model]
        t0 = time.perf_counter()
        status = subprocess.run(cmd).returncode
        seconds = time.perf_counter() - t0
        if status != 0:
            raise SystemExit(f"srgan upscale {width}x{height} failed with status {status}")
        peak = float(report.read_text())
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = None  # our own output: 16000x12000 is over Pillow's decompression-bomb guard
        with Image.open(dest) as out:
            shape = [out.height, out.width]
    return {
        "case": "cli-jpeg",
        "size": f"{width}x{height}",
        "output": shape,
        "seconds": seconds,
        "peak_rss_mib": peak,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--naive-sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--large", default="4000x3000", help="WxH of the srgan upscale JPEG case (0: skip it)")
    ap.add_argument("--model", default=None)
    ap.add_argument("--json", default=str(HERE / "memory.json"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = [run("default", args.size, args.model)]
    print("measured", rows[-1], flush=True)
    if args.large != "0":
        width, height = (int(v) for v in args.large.lower().split("x"))
        rows.append(run_cli(width, height, args.model))
        print("measured", rows[-1], flush=True)
    rows += [run("naive", s, args.model) for s in args.naive_sizes]
    for r in rows:
        r["bound_mib"] = BOUND_MIB
        r["under_bound"] = float(r["peak_rss_mib"]) <= BOUND_MIB  # type: ignore[arg-type]
    naive = [r for r in rows if r["case"] == "naive"]
    # Linear fit of peak RSS against input pixels, extrapolated to --size.
    (s1, m1), (s2, m2) = [(float(r["size"]) ** 2, float(r["peak_rss_mib"])) for r in naive[-2:]]  # type: ignore[arg-type]
    slope = (m2 - m1) / (s2 - s1)
    extrapolated = m2 + slope * (args.size**2 - s2)
    for r in rows:
        print(
            f"{r['case']:8s} {r['size']} -> {r['output']}: peak RSS {float(r['peak_rss_mib']):.0f} MiB "  # type: ignore[arg-type]
            f"(bound {BOUND_MIB:.0f} MiB{'' if r['under_bound'] else ', OVER'}; {float(r['seconds']):.1f} s)"
        )  # type: ignore[arg-type]
    print(f"naive at {args.size}^2 (extrapolated from {args.naive_sizes[-2:]}): about {extrapolated / 1024:.1f} GiB")
    report = {"rows": rows, "naive_extrapolated_mib": extrapolated, "wall_s": time.perf_counter() - t0}
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
