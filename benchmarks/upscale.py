"""Inference benchmark: the library's default ``SRGAN.upscale`` against a naive fp32 NCHW eager forward.

    python benchmarks/upscale.py [--model NAME|PATH] [--sizes 128 256 512 1024 2048] [--json benchmarks/upscale.json]

Every measurement runs in its own subprocess so that peak resident memory (VmHWM, :func:`peak_rss_mib`) belongs to
that path alone.
Paths:
  naive      the same generator and weights, fp32, NCHW, eager, one forward over the whole image under
             torch.inference_mode() (how typical SRGAN scripts run it); the reference for ratios and accuracy
  default    SRGAN.upscale(PIL image) with default settings (everything below, chosen automatically), called
             back to back: the memory one call freed is kept (srgan.runtime.heap_reuse, 2 s) for the next
  default_cold  the same calls, each after srgan.runtime.heap_release() (outside the timing): an isolated call
             that page-faults all its memory in, like one call in a fresh process or after 2 s idle
  fold_bn    naive + BatchNorm folded into the convolutions
  channels_last  naive + channels_last memory format
  bf16       naive in bf16 (CPU with native bf16) / fp16 (CUDA)
  tiled256   naive forward, tiled with 256-pixel tiles (overlap = receptive field), fp32 NCHW
Also measured in the same run: the machine's matmul peak (fp32 and bf16), each path's achieved GFLOP/s and share of
the peak of its dtype (the default's is bf16 only on CPUs with native bf16), the CPU's ISA flags, and the default's
output MP/s at each size over 512^2 (large images should run at the same speed per pixel).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parent / "examples" / "images" / "coffee.png"
PATHS = ["naive", "default", "default_cold", "fold_bn", "channels_last", "bf16", "tiled256"]
WHOLE_IMAGE_MAX = 1024
"""Above this input side the whole-image paths (naive, fold_bn, ...) would need tens of GB: only tiled ones run."""


_ISA_LIMITS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "FBGEMM_ENABLE_INSTRUCTIONS")
"""Environment variables that restrict PyTorch's, oneDNN's, MKL's and FBGEMM's kernels (AVX2-only runs on an
AVX-512 machine): recorded with the machine."""


def natural_photo(size: int) -> np.ndarray:
    """A size x size crop of the sample photo, mirrored as needed (natural image statistics at any size)."""
    img = np.asarray(Image.open(SAMPLE).convert("RGB"))
    reps = (math.ceil(size / img.shape[0]) + 1, math.ceil(size / img.shape[1]) + 1)
    rows = [
        np.concatenate([img if (i + j) % 2 == 0 else img[:, ::-1] for j in range(reps[1])], 1) for i in range(reps[0])
    ]
    tiled = np.concatenate([r if i % 2 == 0 else r[::-1] for i, r in enumerate(rows)], 0)
    return np.ascontiguousarray(tiled[:size, :size])


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (empty where there is none): platform.processor() is often empty."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB: ``VmHWM`` of ``/proc/self/status`` on Linux, else ru_maxrss.

    ru_maxrss alone is wrong in a child process on Linux: the kernel carries the parent's peak over the vfork + exec
    that :mod:`subprocess` uses, so a child started by a parent that once held 2 GiB reports at least 2 GiB (the
    runs before this function reported up to 1.2 GiB too much for the paths measured after a large comparison).
    VmHWM is the peak of this program's own address space.
    """
    import resource

    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def generator_flops_per_input_pixel(gen: torch.nn.Module) -> float:
    """Multiply-adds x 2 of every conv, weighted by the resolution it runs at (relative to the input)."""
    from srgan.models import Generator

    assert isinstance(gen, Generator)
    total = 0.0
    res = 1.0
    for name, m in gen.named_modules():
        if isinstance(m, torch.nn.Conv2d):
            macs = m.in_channels * m.out_channels * m.kernel_size[0] * m.kernel_size[1] / m.groups
            if name.startswith("upsample."):
                stage = int(name.split(".")[1])
                res = 4.0**stage
            elif name == "tail":
                res = float(gen.scale**2)
            else:
                res = 1.0
            total += 2 * macs * res
    return total


def matmul_peak(dtype: torch.dtype, n: int = 2048, seconds: float = 2.0) -> float:
    a = torch.randn(n, n, dtype=dtype)
    b = torch.randn(n, n, dtype=dtype)
    for _ in range(2):
        a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def run_one(path: str, model_arg: str | None, size: int, repeat: int, out_file: str, device_arg: str = "cpu") -> None:
    """Child process: time one path at one size, save the output for the accuracy comparison."""
    from srgan import SRGAN
    from srgan._fuse import fold_batchnorm
    from srgan._tiling import plan_tiles, receptive_radius

    device = torch.device(device_arg)
    cuda = device.type == "cuda"
    model = SRGAN.from_pretrained(model_arg, device="cpu", dtype="fp32")
    gen = model.generator.eval().to(device)
    photo = natural_photo(size)
    x = torch.from_numpy(photo).permute(2, 0, 1)[None].float().div(255).to(device)
    s = gen.scale

    def forward(net: torch.nn.Module, inp: torch.Tensor, dtype: torch.dtype, cl: bool) -> torch.Tensor:
        inp = inp.to(dtype)
        if cl:
            inp = inp.contiguous(memory_format=torch.channels_last)
        return net(inp).float().clamp(0, 1)

    if path in ("default", "default_cold"):
        fast = SRGAN(gen, device=device)
        image = Image.fromarray(photo)

        def step() -> np.ndarray:
            return np.asarray(fast.upscale(image))
    else:
        net: torch.nn.Module = gen
        dtype, cl = torch.float32, False
        if path == "fold_bn":
            net = fold_batchnorm(gen)
        elif path == "channels_last":
            net = gen.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            cl = True
        elif path == "bf16":  # half precision: bf16 on the CPU, fp16 on CUDA
            dtype = torch.float16 if cuda else torch.bfloat16
            net = gen.to(dtype)

        def step() -> np.ndarray:
            with torch.inference_mode():
                if path == "tiled256":
                    out = torch.empty(1, 3, size * s, size * s, device=device)
                    pad = receptive_radius(gen.config)
                    for t in plan_tiles(size, size, tile=256, pad=pad):
                        sr = forward(net, x[:, :, t.py0 : t.py1, t.px0 : t.px1], dtype, cl)
                        oy, ox = (t.y0 - t.py0) * s, (t.x0 - t.px0) * s
                        out[:, :, t.y0 * s : t.y1 * s, t.x0 * s : t.x1 * s] = sr[
                            :, :, oy : oy + (t.y1 - t.y0) * s, ox : ox + (t.x1 - t.x0) * s
                        ]
                else:
                    out = forward(net, x, dtype, cl)
            return (out[0].permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)

    from srgan.runtime import heap_release

    result = step()  # warm-up (also the output for the accuracy check)
    times = []
    for _ in range(repeat):
        if path == "default_cold":
            heap_release()
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        result = step()  # ends with a copy to the CPU, which synchronises
        times.append(time.perf_counter() - t0)
    np.save(out_file, result)
    peak_mb = peak_rss_mib()
    if cuda:
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20  # GPU memory instead of host RSS
    json.dump({"seconds": min(times), "peak_rss_mb": peak_mb}, sys.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="weights to use (default: the packaged default)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512, 1024])
    ap.add_argument("--paths", nargs="+", default=PATHS, choices=PATHS)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per measurement (the fastest counts)")
    ap.add_argument("--json", default=str(HERE / "upscale.json"))
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]; on CUDA peak memory is GPU memory")
    ap.add_argument(
        "--whole-image-max",
        type=int,
        default=WHOLE_IMAGE_MAX,
        help="largest input side the whole-image paths (naive, ...) run at; larger sizes run the tiled paths only",
    )
    ap.add_argument("--_child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        path, size, repeat, out = args._child
        run_one(path, args.model, int(size), int(repeat), out, args.device)
        return

    from srgan import SRGAN

    gen = SRGAN.from_pretrained(args.model, device="cpu", dtype="fp32").generator
    flops_px = generator_flops_per_input_pixel(gen)
    peak32, peak16 = matmul_peak(torch.float32), matmul_peak(torch.bfloat16)
    from srgan.runtime import cpu_capabilities, cpu_flags, cpu_has_native_bf16

    native_bf16 = cpu_has_native_bf16()
    isa = sorted(f for f in cpu_flags() if f.startswith(("avx", "amx", "fma")))
    print(f"machine: {cpu_model() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}")
    print(f"CPU flags: {' '.join(isa) or 'unknown'}; native bf16: {native_bf16}; {cpu_capabilities()}")
    limits = {k: os.environ[k] for k in _ISA_LIMITS if k in os.environ}
    if limits:
        print(f"kernels limited by the environment: {limits}")
    print(
        f"matmul peak: fp32 {peak32:.0f} GFLOP/s, bf16 {peak16:.0f} GFLOP/s; "
        f"generator {flops_px / 1e6:.1f} MFLOP per input pixel"
    )
    # Each path's share is of its own dtype's peak: the default runs in bf16 where the CPU has native bf16.
    default_dtype = "bf16" if native_bf16 and args.device == "cpu" else "fp32"

    def path_dtype(path: str) -> str:
        if path in ("default", "default_cold"):
            return default_dtype
        return "bf16" if path == "bf16" and args.device == "cpu" else "fp32"

    peaks = {"fp32": peak32, "bf16": peak16}
    rows: list[dict[str, Any]] = []
    tmp = HERE / ".bench_tmp"
    tmp.mkdir(exist_ok=True)
    for size in args.sizes:
        ref_out = None
        for path in args.paths:
            if (
                size > args.whole_image_max
                and path not in ("default", "default_cold", "tiled256")
                and args.device == "cpu"
            ):
                need = size * size * 10240 / 2**30
                print(f"{path} {size}: skipped (a whole-image forward needs about {need:.0f} GiB)")
                continue
            out_file = tmp / f"{path}_{size}.npy"
            cmd = [sys.executable, __file__, "--_child", path, str(size), str(args.repeat), str(out_file)]
            cmd += ["--device", args.device]
            if args.model:
                cmd += ["--model", args.model]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{path} {size}: failed: {proc.stderr.strip().splitlines()[-1:]}")
                continue
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            out = np.load(out_file).astype(np.float64)
            if path == "naive":
                ref_out = out
            row = {"size": size, "path": path, **res}
            row["out_mpix_per_s"] = (size * gen.scale) ** 2 / res["seconds"] / 1e6
            row["gflops"] = flops_px * size * size / res["seconds"] / 1e9
            row["share_of_bf16_peak"] = row["gflops"] / peak16
            row["share_of_fp32_peak"] = row["gflops"] / peak32
            row["peak_dtype"] = path_dtype(path)
            row["share_of_own_peak"] = row["gflops"] / peaks[row["peak_dtype"]]
            if ref_out is not None:
                diff = np.abs(out - ref_out)
                mse = float((diff**2).mean())
                row["max_abs_diff_8bit"] = float(diff.max())
                row["psnr_vs_naive_db"] = float("inf") if mse == 0 else 10 * math.log10(255**2 / mse)
            rows.append(row)
    naive = {r["size"]: r["seconds"] for r in rows if r["path"] == "naive"}
    print(
        "\n| input | path | s | out MP/s | x naive | GFLOP/s | % peak of its dtype | peak RSS MiB | max diff "
        "| PSNR vs naive |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        r["speedup_vs_naive"] = naive[r["size"]] / r["seconds"] if r["size"] in naive else None
        sp = f"{r['speedup_vs_naive']:.2f}" if r["speedup_vs_naive"] else "-"
        print(
            f"| {r['size']}^2 | {r['path']} | {r['seconds']:.3f} | {r['out_mpix_per_s']:.3f} | {sp} | "
            f"{r['gflops']:.0f} | {100 * r['share_of_own_peak']:.0f}% {r['peak_dtype']} | "
            f"{r['peak_rss_mb']:.0f} | "
            f"{r.get('max_abs_diff_8bit', float('nan')):.0f} | {r.get('psnr_vs_naive_db', float('nan')):.1f} |"
        )
    default = {r["size"]: r["out_mpix_per_s"] for r in rows if r["path"] == "default"}
    scaling = {f"{k}_vs_512": v / default[512] for k, v in default.items() if 512 in default and k > 512}
    for k, v in scaling.items():
        print(f"default output MP/s at {k.replace('_vs_', '^2 vs ')}^2: {v:.2f}")
    report = {
        "machine": {
            "processor": platform.processor(),
            "cpu_model": cpu_model(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "cpu_isa_flags": isa,
            "native_bf16": native_bf16,
            "torch_cpu_capability": cpu_capabilities().torch_capability,
            "isa_limits": {k: os.environ[k] for k in _ISA_LIMITS if k in os.environ},
        },
        "default_throughput_ratio": scaling,
        "matmul_peak_gflops": {"fp32": peak32, "bf16": peak16},
        "generator_flops_per_input_pixel": flops_px,
        "rows": rows,
    }
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    for f in tmp.glob("*.npy"):
        f.unlink()
    tmp.rmdir()


if __name__ == "__main__":
    main()
