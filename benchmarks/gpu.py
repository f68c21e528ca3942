"""The whole GPU measurement in one run (issue 16, part 4): generator throughput, folder pipeline, training speed.

    python benchmarks/gpu.py --device cuda --json benchmarks/gpu.json --photos FOLDER [--md benchmarks/gpu.md]
    python benchmarks/gpu.py --device cpu --quick --json /tmp/g.json --photos FOLDER   # a smoke test on a CPU

Parts, each in its own subprocess with a hard time cap (a part that fails or runs out of time records its error and
whatever it measured so far; the other parts still run). The whole run takes at most ~120 s on an H200.
  generator  the packaged default generator at 256^2 and 512^2 LR inputs (batch 1): naive fp32 eager NCHW (BatchNorm
             unfolded), then BN folded + channels_last in fp32 / fp16 / bf16, fp16 replayed as a CUDA graph, batched
             tiles (16 x 128^2 in one forward), torch.compile (mode reduce-overhead, fp16, 256^2), and a 960x540 ->
             3840x2160 image through the public SRGAN.upscale (PIL in, PIL out) in fp16 and fp32. Reports ms,
             output MP/s, achieved TFLOP/s (FLOPs counted from the conv layers), share of the H200's dense fp16/bf16
             spec peak (989 TFLOP/s), speed-up over naive fp32 eager and PSNR of reduced-precision outputs against it.
  folder     200 JPEG crops (480x320) of --photos through ``python -m srgan upscale`` (the product CLI) with default
             and 8 workers; wall time, steady-state images/s (first to last output file) and mean GPU busy % (pynvml,
             every 50 ms; nvidia-smi as fallback).
  train      Trainer._train_step steps/s: pretrain at batch 16 crop 96 and batch 64 crop 192, GAN at batch 16 crop 96
             (content loss l1: no VGG), amp bf16 + channels_last on CUDA.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

SMI_UTIL = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
H200_DENSE_FP16_TFLOPS = 989.4  # NVIDIA H200 SXM spec sheet, dense fp16/bf16 tensor core (1979 with sparsity)
H200_DENSE_TF32_TFLOPS = 494.7
CAPS = {"cuda": {"generator": 56, "folder": 27, "train": 28}, "quick": {"generator": 80, "folder": 50, "train": 45}}


# ------------------------------------------------------------------------------------------------ helpers
class Recorder:
    """Results of one part, written to disk after every entry so a killed part still leaves what it measured."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {"rows": [], "errors": []}

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=str))
        tmp.replace(self.path)

    def row(self, **row: Any) -> None:
        self.data["rows"].append(row)
        self.save()
        print("  " + ", ".join(f"{k}={_fmt(v)}" for k, v in row.items()), flush=True)

    def error(self, what: str) -> None:
        tb = traceback.format_exc()
        print(f"  {what} FAILED:\n{tb}", file=sys.stderr, flush=True)
        self.data["errors"].append({"what": what, "traceback": tb})
        self.save()


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(fn: Any, device: Any, deadline: float, *, warmup: int = 2, reps: int = 10, max_s: float = 2.0) -> float:
    """Median seconds of one ``fn()`` call, after ``warmup`` calls; stops early at ``max_s`` or the deadline."""
    import torch

    for _ in range(warmup):
        fn()
    sync(device)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < reps:
        if device.type == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        now = time.perf_counter()
        if now - start > max_s or now > deadline:
            break
    times.sort()
    return times[len(times) // 2]


def psnr(a: Any, b: Any) -> float:
    mse = float((a.float().clamp(0, 1) - b.float().clamp(0, 1)).pow(2).mean())
    return float("inf") if mse == 0 else 10 * math.log10(1 / mse)


def photo_tensor(size_h: int, size_w: int, device: Any, n: int = 1) -> Any:
    """(n, 3, h, w) float in [0, 1]: crops of the sample photo (natural statistics), random if unavailable."""
    import torch

    try:
        sys.path.insert(0, str(HERE))
        from upscale import natural_photo  # type: ignore[import-not-found]

        img = natural_photo(max(size_h, size_w) + n)
        crops = [img[i : i + size_h, i : i + size_w] for i in range(n)]
        x = torch.stack([torch.from_numpy(c.copy()).permute(2, 0, 1) for c in crops]).float().div(255)
    except Exception:
        x = torch.rand(n, 3, size_h, size_w)
    return x.to(device)


def flops_per_input_pixel(gen: Any) -> tuple[float, str]:
    import torch

    try:
        sys.path.insert(0, str(HERE))
        from upscale import generator_flops_per_input_pixel  # type: ignore[import-not-found]

        return generator_flops_per_input_pixel(gen), "analytic (2*Cin*Cout*k*k per output pixel of every conv)"
    except Exception:
        from torch.utils.flop_counter import FlopCounterMode

        x = torch.rand(1, 3, 32, 32, device=next(gen.parameters()).device)
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            gen(x)
        return fc.get_total_flops() / (32 * 32), "FlopCounterMode"


# ------------------------------------------------------------------------------------------------ part 1
def part_generator(args: argparse.Namespace, rec: Recorder, deadline: float) -> None:
    import torch
    from PIL import Image

    from srgan import SRGAN
    from srgan._fuse import fold_batchnorm

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    quick = args.quick
    sizes = [32, 48] if quick else [256, 512]
    base = SRGAN.from_pretrained(device="cpu", dtype="fp32")
    gen = base.generator.eval().requires_grad_(False)
    s = gen.scale
    flops_px, how = flops_per_input_pixel(gen)
    rec.data["generator"] = str(gen.config)
    rec.data["flops_per_input_pixel"] = flops_px
    rec.data["flops_counted_by"] = how
    rec.data["cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32
    rec.data["peak_tflops_spec"] = {"fp16_bf16_dense": H200_DENSE_FP16_TFLOPS, "tf32_dense": H200_DENSE_TF32_TFLOPS}
    print(f"generator {gen.config}: {flops_px / 1e6:.2f} MFLOP per input pixel ({how})", flush=True)
    if cuda:
        torch.backends.cudnn.benchmark = True
    naive = gen.to(device)  # unfolded BN, NCHW, fp32
    folded = fold_batchnorm(gen).to(device).eval().requires_grad_(False)
    reps = 3 if quick else 20
    max_s = 1.0 if quick else 1.5

    def record(path: str, n: int, h: int, w: int, sec: float, ref_sec: float | None, **extra: Any) -> None:
        tflops = flops_px * n * h * w / sec / 1e12
        rec.row(
            part="generator",
            path=path,
            input=f"{n}x{h}x{w}",
            ms=sec * 1e3,
            out_mpix_per_s=n * h * w * s * s / sec / 1e6,
            tflops=tflops,
            share_of_fp16_dense_peak=tflops / H200_DENSE_FP16_TFLOPS,
            speedup_vs_fp32_eager=(ref_sec / sec) if ref_sec else None,
            **extra,
        )

    for size in sizes:
        x = photo_tensor(size, size, device)
        ref_out = None
        ref_sec = None
        variants: list[tuple[str, Any, Any, bool]] = [
            ("fp32 eager NCHW (naive)", naive, torch.float32, False),
            ("fp32 BN-folded channels_last", folded, torch.float32, True),
            ("fp16 BN-folded channels_last", folded, torch.float16, True),
            ("bf16 BN-folded channels_last", folded, torch.bfloat16, True),
        ]
        if not cuda:  # fp16 convolutions on a CPU: slow reference kernels, nothing to learn
            variants = [v for v in variants if v[2] != torch.float16]
        for name, net0, dtype, cl in variants:
            if time.perf_counter() > deadline:
                rec.data["errors"].append({"what": f"{name} {size}", "traceback": "skipped: part deadline"})
                continue
            try:
                net = net0.to(dtype)
                inp = x.to(dtype)
                if cl:
                    net = net.to(memory_format=torch.channels_last)
                    inp = inp.contiguous(memory_format=torch.channels_last)
                with torch.inference_mode():
                    out = net(inp).float()
                    sec = bench(lambda: net(inp), device, deadline, reps=reps, max_s=max_s)  # noqa: B023
                extra: dict[str, Any] = {}
                if ref_out is None:
                    ref_out, ref_sec = out, sec
                else:
                    extra["psnr_vs_fp32_eager_db"] = psnr(out, ref_out)
                record(name, 1, size, size, sec, ref_sec, **extra)
                # The fp16 model replayed as a CUDA graph (no launch overhead).
                if cuda and dtype == torch.float16 and time.perf_counter() < deadline:
                    try:
                        static_in = inp.clone()
                        side = torch.cuda.Stream()
                        side.wait_stream(torch.cuda.current_stream())
                        with torch.cuda.stream(side), torch.inference_mode():
                            for _ in range(2):
                                net(static_in)
                        torch.cuda.current_stream().wait_stream(side)
                        graph = torch.cuda.CUDAGraph()
                        with torch.cuda.graph(graph), torch.inference_mode():
                            static_out = net(static_in)
                        sec_g = bench(graph.replay, device, deadline, reps=reps, max_s=max_s)
                        record(
                            "fp16 BN-folded channels_last, CUDA graph",
                            1,
                            size,
                            size,
                            sec_g,
                            ref_sec,
                            psnr_vs_fp32_eager_db=psnr(static_out, ref_out),
                        )
                        del graph, static_out, static_in
                    except Exception:
                        rec.error(f"cuda graph {size}")
                del out
            except Exception:
                rec.error(f"{name} {size}")
            finally:
                if cuda:
                    torch.cuda.empty_cache()
        folded = folded.float().to(memory_format=torch.contiguous_format)
        naive = naive.float()

    # Batched tiles: many small inputs in one forward (how the pipeline batches same-shape tiles on CUDA).
    n_t, t_sz = (4, 24) if quick else (16, 128)
    xb = photo_tensor(t_sz, t_sz, device, n=n_t)
    for dtype in (torch.float16, torch.bfloat16) if cuda else (torch.bfloat16,):
        if time.perf_counter() > deadline:
            break
        try:
            net = folded.to(dtype).to(memory_format=torch.channels_last)
            inp = xb.to(dtype).contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                sec = bench(lambda: net(inp), device, deadline, reps=reps, max_s=max_s)  # noqa: B023
            record(f"{str(dtype)[6:]} batched tiles channels_last", n_t, t_sz, t_sz, sec, None)
        except Exception:
            rec.error(f"batched tiles {dtype}")

    # A 4K output image through the public API (PIL in, PIL out: includes tiling, copies, uint8 conversion).
    h4, w4 = (27, 48) if quick else (540, 960)
    img = Image.fromarray(
        (photo_tensor(h4, w4, "cpu")[0].permute(1, 2, 0).numpy() * 255).round().astype("uint8"), "RGB"
    )
    outs: dict[str, Any] = {}
    for dt in ("fp16", "fp32") if cuda else ("bf16", "fp32"):
        if time.perf_counter() > deadline:
            break
        try:
            model = SRGAN(gen.float(), device=device, dtype=dt)
            outs[dt] = model.upscale(img)  # warm-up (builds the folded copy)
            sec = bench(lambda: model.upscale(img), device, deadline, warmup=1, reps=2 if quick else 5, max_s=3)  # noqa: B023
            record(f"SRGAN.upscale PIL {w4}x{h4} -> {w4 * s}x{h4 * s} ({dt})", 1, h4, w4, sec, None)
        except Exception:
            rec.error(f"4K upscale {dt}")
    if len(outs) == 2:
        import numpy as np

        a, b = (np.asarray(o, dtype=np.float64) for o in outs.values())
        mse = float(((a - b) ** 2).mean())
        rec.data["upscale_4k_psnr_half_vs_fp32_db"] = float("inf") if mse == 0 else 10 * math.log10(255**2 / mse)

    # torch.compile (last: the slowest and the likeliest to fail or run out of time).
    if quick and not cuda and not args.compile:
        rec.data["errors"].append(
            {"what": "torch.compile", "traceback": "skipped in --quick on CPU (--compile runs it)"}
        )
        return
    size = sizes[0]
    dtype = torch.float16 if cuda else torch.bfloat16
    try:
        x = photo_tensor(size, size, device)
        net = folded.to(dtype).to(memory_format=torch.channels_last)
        inp = x.to(dtype).contiguous(memory_format=torch.channels_last)
        mode = "reduce-overhead" if cuda else "default"
        compiled = torch.compile(net, mode=mode, dynamic=False)
        t0 = time.perf_counter()
        with torch.inference_mode():
            out_c = compiled(inp).float()
            sync(device)
            compile_s = time.perf_counter() - t0
            ref = naive.float()(x)
            sec = bench(lambda: compiled(inp), device, deadline, warmup=3, reps=reps, max_s=max_s)
        ref_rows = [
            r for r in rec.data["rows"] if r["path"] == "fp32 eager NCHW (naive)" and r["input"] == f"1x{size}x{size}"
        ]
        ref_sec = ref_rows[0]["ms"] / 1e3 if ref_rows else None
        record(
            f"{str(dtype)[6:]} channels_last torch.compile({mode})",
            1,
            size,
            size,
            sec,
            ref_sec,
            psnr_vs_fp32_eager_db=psnr(out_c, ref),
            compile_s=compile_s,
        )
    except Exception:
        rec.error("torch.compile")


# ------------------------------------------------------------------------------------------------ part 2
class GPUSampler:
    """GPU utilisation every 50 ms (pynvml, else ``nvidia-smi -lms 50``) and the times output files appear."""

    def __init__(self, out_dir: Path, cuda: bool) -> None:
        self.out_dir, self.cuda = out_dir, cuda
        self.util: list[tuple[float, float]] = []
        self.files: dict[str, float] = {}
        self.source = "none"
        self._stop = threading.Event()
        self._smi: subprocess.Popen[str] | None = None
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> GPUSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        if self._smi is not None:
            self._smi.terminate()

    def _loop(self) -> None:
        handle = read = None
        if self.cuda:
            idx = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0]
            idx = int(idx) if idx.isdigit() else 0
            try:
                import pynvml

                pynvml.nvmlInit()
                handle = pynvml.nvmlDeviceGetHandleByIndex(idx)
                self.source = "pynvml"

                def read() -> float:
                    return float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            except Exception:
                try:
                    self._smi = subprocess.Popen(
                        [*SMI_UTIL, f"--id={idx}", "-lms", "50"],
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                    self.source = "nvidia-smi"
                    threading.Thread(target=self._smi_reader, daemon=True).start()
                except Exception:
                    traceback.print_exc()
        while not self._stop.is_set():
            now = time.perf_counter()
            if read is not None:
                try:
                    self.util.append((now, read()))
                except Exception:
                    read = None
            try:
                for f in os.scandir(self.out_dir):
                    if "_x" in f.name and not f.name.startswith(".") and f.name.endswith(".jpg"):
                        self.files.setdefault(f.name, now)
            except OSError:
                pass
            self._stop.wait(0.05)

    def _smi_reader(self) -> None:
        assert self._smi is not None and self._smi.stdout is not None
        for line in self._smi.stdout:
            with contextlib.suppress(ValueError):
                self.util.append((time.perf_counter(), float(line.strip())))

    def mean_util(self, t0: float, t1: float) -> float | None:
        vals = [u for t, u in self.util if t0 <= t <= t1]
        return sum(vals) / len(vals) if vals else None


def part_folder(args: argparse.Namespace, rec: Recorder, deadline: float) -> None:
    folder = Path(args._photos)
    n = len(list(folder.glob("*.jpg")))
    cuda = args.device.startswith("cuda")
    for workers in (2, 8):
        left = deadline - time.perf_counter()
        if left < 5:
            rec.data["errors"].append({"what": f"folder workers={workers}", "traceback": "skipped: part deadline"})
            continue
        with tempfile.TemporaryDirectory() as out:
            cmd = [sys.executable, "-m", "srgan", "upscale", str(folder), "-o", out, "--device", args.device]
            cmd += ["--workers", str(workers)]
            try:
                with GPUSampler(Path(out), cuda) as sampler:
                    t0 = time.perf_counter()
                    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=left - 1)
                    wall = time.perf_counter() - t0
                times = sorted(sampler.files.values())
                row: dict[str, Any] = {
                    "part": "folder",
                    "path": f"srgan upscale --device {args.device} --workers {workers}",
                    "images": n,
                    "written": len(times),
                    "returncode": proc.returncode,
                    "wall_s": wall,
                    "images_per_s_wall": len(times) / wall,
                }
                if len(times) >= 2:
                    row["steady_images_per_s"] = (len(times) - 1) / (times[-1] - times[0])
                    row["gpu_busy_pct_steady"] = sampler.mean_util(times[0], times[-1])
                row["gpu_busy_pct_whole_run"] = sampler.mean_util(t0, t0 + wall)
                row["util_source"] = sampler.source
                row["cli_summary"] = (proc.stdout.strip().splitlines() or [""])[-1]
                if proc.returncode:
                    row["stderr_tail"] = proc.stderr[-2000:]
                    print(proc.stderr[-2000:], file=sys.stderr)
                rec.row(**row)
            except Exception:
                rec.error(f"folder workers={workers}")


# ------------------------------------------------------------------------------------------------ part 3
def part_train(args: argparse.Namespace, rec: Recorder, deadline: float) -> None:
    import torch

    from srgan import TrainConfig, Trainer

    cuda = args.device.startswith("cuda")
    if cuda:
        torch.backends.cudnn.benchmark = True
    if args.quick:
        cases = [("pretrain", 2, 32), ("gan", 2, 32), ("pretrain", 4, 48)]
        steps, warm = 3, 1
    else:
        cases = [("pretrain", 16, 96), ("gan", 16, 96), ("pretrain", 64, 192)]
        steps, warm = 30, 3
    with tempfile.TemporaryDirectory() as work:
        for phase, batch, crop in cases:
            if time.perf_counter() > deadline - 2:
                rec.data["errors"].append({"what": f"train {phase} b{batch} c{crop}", "traceback": "skipped: deadline"})
                continue
            try:
                cfg = TrainConfig(
                    phase=phase,
                    batch_size=batch,
                    crop_size=crop,
                    amp="bf16" if cuda else "auto",
                    channels_last=True,
                    content_loss="l1",
                    vgg_weights="none",
                    val_every=0,
                    pretrain_steps=10_000,
                    gan_steps=10_000,
                )
                out = Path(work) / f"{phase}-{batch}-{crop}"
                tr = Trainer(cfg, train_dirs=[args._photos], output_dir=out, device=args.device, progress=False)
                tr.phase = phase
                lr, hr = next(tr._batches(phase))[:2]
                for _ in range(warm):
                    tr._train_step(lr, hr)
                sync(torch.device(args.device))
                t0 = time.perf_counter()
                done = 0
                while done < steps and (done < 2 or time.perf_counter() < deadline - 1):
                    tr._train_step(lr, hr)  # returns float(loss): synchronises every step
                    done += 1
                sync(torch.device(args.device))
                sec = time.perf_counter() - t0
                rec.row(
                    part="train",
                    path=f"{phase} batch {batch} crop {crop} ({'bf16 amp' if cuda else cfg.amp}, channels_last)",
                    steps=done,
                    steps_per_s=done / sec,
                    hr_mpix_per_s=done * batch * crop * crop / sec / 1e6,
                    amp_dtype=str(tr.amp_dtype),
                )
                del tr
                if cuda:
                    torch.cuda.empty_cache()
            except Exception:
                rec.error(f"train {phase} b{batch} c{crop}")


PARTS = {"generator": part_generator, "folder": part_folder, "train": part_train}


# ------------------------------------------------------------------------------------------------ parent
def make_photos(src: Path, dest: Path, n: int, w: int, h: int) -> int:
    from PIL import Image, ImageOps

    exts = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
    files = sorted(p for p in src.rglob("*") if p.suffix.lower() in exts)
    images = []
    for p in files[:32]:
        try:
            img = Image.open(p)
            img.draft("RGB", (1600, 1600))  # JPEG: decode big photos at a reduced scale (fast)
            img = img.convert("RGB")
            img.thumbnail((1600, 1600))  # photo-like detail at 480x320 crops, not flat patches of a 24 MP shot
            images.append(img)
        except Exception as e:
            print(f"skipping {p}: {e}", file=sys.stderr)
    if not images:
        raise SystemExit(f"no readable images in {src}")
    for i in range(n):
        img = images[i % len(images)]
        if img.width < w or img.height < h:
            img = ImageOps.fit(img, (max(w, img.width), max(h, img.height)))
        k = i // len(images)
        x0 = (k * 37) % (img.width - w + 1)
        y0 = (k * 23) % (img.height - h + 1)
        img.crop((x0, y0, x0 + w, y0 + h)).save(dest / f"photo_{i:03d}.jpg", quality=90)
    return len(images)


def environment(device: str) -> dict[str, Any]:
    import torch

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
    }
    try:
        from dataclasses import asdict

        from srgan.runtime import cpu_capabilities

        env["cpu_capabilities"] = asdict(cpu_capabilities())
    except Exception as e:
        env["cpu_capabilities"] = f"unavailable: {e}"
    if device.startswith("cuda") and torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        env["gpu"] = torch.cuda.get_device_name(0)
        env["gpu_memory_gib"] = round(p.total_memory / 2**30, 1)
        env["gpu_sms"] = p.multi_processor_count
        env["gpu_capability"] = f"{p.major}.{p.minor}"
    with contextlib.suppress(Exception):
        env["nvidia_smi"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,clocks.max.sm,power.limit", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    return env


def markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    lines = [
        f"GPU: {env.get('gpu', 'none')} ({env.get('nvidia_smi', '')}); torch {env['torch']}, CUDA {env['cuda']}, "
        f"cuDNN {env['cudnn']}; CPU {env['cpu']} x{env['cpus']}, {env.get('cpu_capabilities')}",
        f"Peak used for shares: {H200_DENSE_FP16_TFLOPS} TFLOP/s dense fp16/bf16 (H200 spec sheet). "
        f"Generator FLOPs per input pixel: {report.get('generator', {}).get('flops_per_input_pixel', 0) / 1e6:.2f} M.",
        f"Total wall time: {report['wall_s']:.1f} s.",
        "",
        "| path | input (NxHxW) | ms | out MP/s | TFLOP/s | % fp16 peak | x fp32 eager | PSNR vs fp32 (dB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    gen = report.get("generator", {})
    for r in gen.get("rows", []):
        sp = r.get("speedup_vs_fp32_eager")
        ps = r.get("psnr_vs_fp32_eager_db")
        extra = f" (compile {r['compile_s']:.1f} s)" if "compile_s" in r else ""
        lines.append(
            f"| {r['path']}{extra} | {r['input']} | {r['ms']:.2f} | {r['out_mpix_per_s']:.1f} | {r['tflops']:.1f} | "
            f"{100 * r['share_of_fp16_dense_peak']:.1f}% | {f'{sp:.2f}' if sp else '-'} | "
            f"{f'{ps:.1f}' if ps is not None else '-'} |"
        )
    if "upscale_4k_psnr_half_vs_fp32_db" in gen:
        lines.append(f"\n4K upscale, half vs fp32 output PSNR: {gen['upscale_4k_psnr_half_vs_fp32_db']:.1f} dB")
    lines += [
        "",
        "| folder pipeline | images | wall s | img/s (wall) | img/s (steady) | GPU busy % steady | GPU busy % whole |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]

    def pct(v: Any) -> str:
        return f"{v:.0f}" if isinstance(v, (int, float)) else "-"

    for r in report.get("folder", {}).get("rows", []):
        lines.append(
            f"| {r['path']} | {r['written']}/{r['images']} | {r['wall_s']:.1f} | {r['images_per_s_wall']:.1f} | "
            f"{r.get('steady_images_per_s', 0):.1f} | {pct(r.get('gpu_busy_pct_steady'))} | "
            f"{pct(r.get('gpu_busy_pct_whole_run'))} |"
        )
    lines += ["", "| training | steps | steps/s | HR MP/s |", "|---|---:|---:|---:|"]
    for r in report.get("train", {}).get("rows", []):
        lines.append(f"| {r['path']} | {r['steps']} | {r['steps_per_s']:.2f} | {r['hr_mpix_per_s']:.2f} |")
    errs = [(p, e) for p in PARTS for e in report.get(p, {}).get("errors", [])]
    if errs:
        lines += ["", "Errors / skipped:"]
        lines += [f"- {p}: {e['what']}: {e['traceback'].strip().splitlines()[-1]}" for p, e in errs]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--json", default=str(HERE / "gpu.json"))
    ap.add_argument("--md", default=None, help="markdown table (default: the JSON path with .md)")
    ap.add_argument("--photos", default=str(ROOT.parent / "shared" / "data" / "Set14"), help="folder of photos")
    ap.add_argument("--quick", action="store_true", help="tiny sizes and few repeats (a CPU smoke test)")
    ap.add_argument("--compile", action="store_true", help="also run torch.compile in --quick on a CPU")
    ap.add_argument("--parts", nargs="+", default=list(PARTS), choices=list(PARTS))
    ap.add_argument("--_part", help=argparse.SUPPRESS)
    ap.add_argument("--_out", help=argparse.SUPPRESS)
    ap.add_argument("--_photos", help=argparse.SUPPRESS)
    ap.add_argument("--_cap", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args._part:  # child: one part
        rec = Recorder(Path(args._out))
        deadline = time.perf_counter() + args._cap - 4  # soft deadline; the parent kills at the cap
        try:
            PARTS[args._part](args, rec, deadline)
        except Exception:
            rec.error(args._part)
        rec.save()
        return

    t_start = time.perf_counter()
    caps = CAPS["quick" if args.quick else "cuda"]
    report: dict[str, Any] = {"environment": environment(args.device), "command": sys.argv}
    print(json.dumps(report["environment"], indent=2), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp) / "photos"
        photos.mkdir()
        n, (w, h) = (12, (96, 64)) if args.quick else (200, (480, 320))
        try:
            report["photos"] = {"sources": make_photos(Path(args.photos), photos, n, w, h), "crops": n, "size": [w, h]}
        except BaseException:
            traceback.print_exc()
            report["photos"] = {"error": traceback.format_exc()}
        for part in args.parts:
            out = Path(tmp) / f"{part}.json"
            cmd = [sys.executable, __file__, "--_part", part, "--_out", str(out), "--_photos", str(photos)]
            cmd += ["--_cap", str(caps[part]), "--device", args.device] + ["--quick"] * args.quick
            cmd += ["--compile"] * args.compile
            print(f"\n== {part} (cap {caps[part]} s)", flush=True)
            t0 = time.perf_counter()
            err = None
            try:
                rc = subprocess.run(cmd, timeout=caps[part]).returncode
                if rc:
                    err = f"part exited with status {rc}"
            except subprocess.TimeoutExpired:
                err = f"killed at its {caps[part]} s cap"
            try:
                result = json.loads(out.read_text())
            except Exception:
                result = {"rows": [], "errors": []}
            if err:
                print(f"{part}: {err}", file=sys.stderr)
                result["errors"].append({"what": part, "traceback": err})
            result["wall_s"] = time.perf_counter() - t0
            report[part] = result
    report["wall_s"] = time.perf_counter() - t_start
    md = markdown(report)
    print("\n" + md)
    Path(args.json).write_text(json.dumps(report, indent=2, default=str) + "\n")
    md_path = Path(args.md) if args.md else Path(args.json).with_suffix(".md")
    md_path.write_text(md)
    print(f"wrote {args.json} and {md_path}")


if __name__ == "__main__":
    main()
