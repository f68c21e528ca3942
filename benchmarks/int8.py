"""Int8 inference of the packaged generator on the CPU: speed against fp32, and the accuracy bar of issue 16.

    python benchmarks/int8.py [--model NAME|PATH] [--sizes 256 512] [--repeat 3] [--isa native avx2]
                              [--json benchmarks/int8.json]

Each ISA runs in its own subprocess: ``native`` is this CPU as it is; ``avx2`` emulates an AVX2-only CPU on an
AVX-512 one (``ATEN_CPU_CAPABILITY=avx2``, ``ONEDNN_MAX_CPU_ISA=AVX2``, ``FBGEMM_ENABLE_INSTRUCTIONS=AVX2``,
``MKL_ENABLE_INSTRUCTIONS=AVX2``, set before torch loads; the child prints
``torch.backends.cpu.get_cpu_capability()`` to show it took). The emulation restricts the kernels, not the cache
sizes or clock of a real AVX2 CPU, and cannot show AVX-VNNI (the 256-bit VNNI of Intel client chips since 12th
gen): on such a CPU int8 runs faster than the ``avx2`` figures here.

Paths (one forward over the whole image, under ``torch.inference_mode()``, best of ``--repeat``; all but naive
inside :func:`srgan.runtime.heap_reuse`, as the library runs):
  naive         fp32 NCHW eager, BatchNorm unfolded: the reference of benchmarks/upscale.py
  default       ``SRGAN.upscale_tensor``: the library's CPU default without native bf16 (fp32, BatchNorm folded,
                the tail conv before the last PixelShuffle, channels_last, two-stage tiles); ratios are against it
  fp32          the default's network (:func:`srgan._fuse.prepare_for_inference`, channels_last) in one forward
  bf16          fp32 path in bf16 (emulated by oneDNN where the CPU has no avx512_bf16 / AMX)
  int8          torch.ao FX post-training static quantization, oneDNN engine: per-channel symmetric 7-bit weights
                (no int16 saturation in AVX2's vpmaddubsw), per-tensor 8-bit activations from min/max over the LR
                of the T91 calibration images; PReLU in fp32 (torch's quantized::prelu gives wrong results, see
                below)
  int8_mixed    int8 with the first (9x9, 3->C) and last (9x9, C->3) convs in fp32
  int8_fp32skip int8 convolutions with the residual stream kept in fp32: the skip additions (16 blocks and the
                long skip) run in fp32 on dequantized conv outputs, so the trunk's running map is not rounded to
                8 bits once per block (each conv still quantizes its input)
  int8_hist     int8_fp32skip with activation ranges from torch's HistogramObserver (the range that minimises the
                L2 quantization error over a histogram of the calibration activations) instead of min/max
  int8_hist_mixed  int8_hist with the first and last convs in fp32 (as int8_mixed)
  int8_fbgemm   what torch's "x86" defaults give on an AVX2 CPU: FBGEMM, 8-bit weights, 7-bit activations
                (reduce_range), fp32 PReLU
  ort_fp32      ONNX Runtime (CPU provider, all graph optimisations, the same threads) on srgan's ONNX export
  ort_int8      ONNX Runtime static int8 (QDQ, per-channel int8 weights, uint8 activations, min/max calibration on
                the same T91 LR images), from the same export
The ONNX Runtime paths need ``pip install srgan[export]`` and run natively only: its kernels are chosen by CPUID,
which the AVX2 emulation's variables do not restrict.

Accuracy (each reduced-precision path, on this ISA's kernels):
  - output PSNR against the fp32 path's output, both rounded to 8 bits, RGB, whole image: on every Set14 image
    (LR by the protocol's bicubic x1/4, :func:`srgan.evaluation.protocol_lr`) and on the sample photos
    examples/images/*.png upscaled as they are. Bar: >= 38 dB on each.
  - Set5 / Set14 PSNR-Y of the protocol (:func:`srgan.evaluation.score`) against fp32's figure. Bar: within
    0.1 dB. fp32's figure is cross-checked against :func:`srgan.evaluation.evaluate`.
Calibration never sees Set5 or Set14: it uses the first ``--calib-images`` images of ``--calib-dir`` (T91).

Also measured in the same run: matmul peaks (fp32, bf16) and the GOP/s of one body conv (64 -> 64, 3x3, at
256^2) in fp32 and in int8, the measured conv peaks that each path's share is given against.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import operator
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
from torch import nn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from upscale import generator_flops_per_input_pixel, matmul_peak, natural_photo  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
PATHS = [
    "naive",
    "default",
    "fp32",
    "bf16",
    "int8",
    "int8_mixed",
    "int8_fp32skip",
    "int8_hist",
    "int8_hist_mixed",
    "int8_fbgemm",
    "ort_fp32",
    "ort_int8",
]
REDUCED = [p for p in PATHS if p not in ("naive", "default", "fp32", "ort_fp32")]
ORT_PATHS = ("ort_fp32", "ort_int8")
AVX2_ENV = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
}
OUTPUT_PSNR_BAR_DB = 38.0
EVAL_DELTA_BAR_DB = 0.1


# ----------------------------------------------------------------------------------------------------- int8 models
class FloatPReLU(nn.Module):
    """A PReLU that FX quantization leaves in fp32 (a leaf it does not trace; dequantize before, quantize after).

    torch's ``quantized::prelu`` with per-channel slopes is wrong on this torch (2.14): 1 to 5 quantization steps
    off on random inputs, and whole units off inside the generator (PSNR against fp32 under 10 dB).
    """

    def __init__(self, prelu: nn.PReLU) -> None:
        super().__init__()
        self.prelu = prelu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.prelu(x)
        return out


def _wrap_prelus(model: nn.Module) -> nn.Module:
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.PReLU):
                setattr(parent, name, FloatPReLU(child))
    return model


def quantize_generator(
    generator: nn.Module,
    calibration: list[torch.Tensor],
    *,
    engine: str = "onednn",
    weight_bits: int = 7,
    activation_bits: int = 8,
    float_modules: tuple[str, ...] = (),
    float_adds: bool = False,
    histogram: bool = False,
) -> nn.Module:
    """An int8 copy of ``generator`` (BatchNorm folded, the tail conv before the last PixelShuffle, as the default
    runs it), calibrated on ``calibration`` ((1, 3, h, w) in [0, 1])."""
    from torch.ao.quantization import (
        HistogramObserver,
        MinMaxObserver,
        PerChannelMinMaxObserver,
        QConfig,
        QConfigMapping,
    )
    from torch.ao.quantization.fx.custom_config import PrepareCustomConfig
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    from srgan._fuse import prepare_for_inference

    wmax = 2 ** (weight_bits - 1) - 1
    qconfig = QConfig(
        activation=(HistogramObserver if histogram else MinMaxObserver).with_args(
            dtype=torch.quint8, quant_min=0, quant_max=2**activation_bits - 1
        ),
        weight=PerChannelMinMaxObserver.with_args(
            dtype=torch.qint8, qscheme=torch.per_channel_symmetric, quant_min=-wmax, quant_max=wmax
        ),
    )
    mapping = QConfigMapping().set_global(qconfig).set_object_type(FloatPReLU, None)
    for name in float_modules:
        mapping.set_module_name(name, None)
    if float_adds:
        mapping.set_object_type(operator.add, None).set_object_type(torch.add, None)
    model = _wrap_prelus(prepare_for_inference(generator))  # the default's network: BN folded, tail rewritten
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine  # the weights are packed for the engine set at convert time
    try:
        prepared = prepare_fx(
            model,
            mapping,
            example_inputs=(calibration[0],),
            prepare_custom_config=PrepareCustomConfig().set_non_traceable_module_classes([FloatPReLU]),
        )
        with torch.inference_mode():
            for x in calibration:
                prepared(x)
        return convert_fx(prepared)
    finally:
        torch.backends.quantized.engine = previous


# ----------------------------------------------------------------------------------------------------- data
def _read(path: Path) -> torch.Tensor:
    """(1, 3, H, W) float64 in [0, 1]."""
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].to(torch.float64) / 255.0


def _protocol_pair(path: Path, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(HR cropped to a multiple of scale, float64; LR of the protocol, float32)."""
    from srgan.degradation import modcrop
    from srgan.evaluation import protocol_lr

    hr = modcrop(_read(path), scale)
    return hr, protocol_lr(hr, scale=scale).float()


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".bmp", ".jpg", ".jpeg"))


# ----------------------------------------------------------------------------------------------------- ONNX Runtime
def _ort_sessions(generator: nn.Module, calibration: list[torch.Tensor], paths: list[str]) -> dict[str, Any]:
    """ONNX Runtime sessions of srgan's ONNX export: fp32 and static int8 (QDQ); {} without onnxruntime."""
    import tempfile

    try:
        import onnxruntime as ort
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    except ImportError:
        print("onnxruntime not installed (pip install srgan[export]): its paths are skipped", file=sys.stderr)
        return {}
    from srgan.export import export_onnx

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self, name: str) -> None:
            self.items = iter([{name: x.float().numpy()} for x in calibration])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.items, None)

    def session(path: Path) -> Any:
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    tmp = Path(tempfile.mkdtemp(prefix="srgan-ort-"))
    fp32 = export_onnx(generator, tmp / "g.onnx")
    out = {"ort_fp32": session(fp32)}
    if "ort_int8" in paths:
        name = out["ort_fp32"].get_inputs()[0].name
        quantize_static(
            str(fp32),
            str(tmp / "g_int8.onnx"),
            Reader(name),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        out["ort_int8"] = session(tmp / "g_int8.onnx")
    return {p: out[p] for p in paths}


# ----------------------------------------------------------------------------------------------------- child
def _conv_peaks(engine: str) -> dict[str, float]:
    """GOP/s of one body conv (64 -> 64, 3x3, 256^2 input, channels_last), fp32 and int8 (7-bit weights)."""
    import torch.ao.nn.quantized as nnq

    conv = nn.Conv2d(64, 64, 3, padding=1).eval().to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    x = torch.rand(1, 64, 256, 256).contiguous(memory_format=torch.channels_last)
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine
    try:
        qconv = nnq.Conv2d(64, 64, 3, padding=1)
        w = conv.weight.detach()
        scales = w.abs().amax(dim=(1, 2, 3)).clamp_min(1e-8) / 63
        qw = torch.quantize_per_channel(w, scales, torch.zeros(64, dtype=torch.long), 0, torch.qint8)
        qconv.set_weight_bias(qw, conv.bias.detach())
    finally:
        torch.backends.quantized.engine = previous
    qconv.scale, qconv.zero_point = 0.05, 128
    qx = torch.quantize_per_tensor(x, 1 / 255, 0, torch.quint8)
    ops = 2 * 64 * 64 * 9 * 256 * 256
    out = {}
    with torch.inference_mode():
        for name, f in (("fp32", lambda: conv(x)), ("int8", lambda: qconv(qx))):
            f()
            best = min(_timed(f) for _ in range(5))
            out[name] = ops / best / 1e9
    return out


def _timed(f: Any) -> float:
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def _psnr8(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (dB) of two outputs rounded to 8 bits, RGB, whole image."""
    qa = (a.double().clamp(0, 1) * 255).round()
    qb = (b.double().clamp(0, 1) * 255).round()
    mse = float(((qa - qb) ** 2).mean())
    return float("inf") if mse == 0 else 10 * math.log10(255**2 / mse)


def run_child(args: argparse.Namespace) -> dict[str, Any]:
    from srgan import SRGAN
    from srgan._fuse import fold_batchnorm
    from srgan.degradation import quantize
    from srgan.evaluation import evaluate, score
    from srgan.runtime import cpu_capabilities, heap_reuse

    caps = cpu_capabilities()
    load_before = os.getloadavg()
    model = SRGAN.from_pretrained(args.model, device="cpu", dtype="fp32")
    gen = model.generator.eval()
    scale = gen.scale
    calib_paths = _images(Path(args.calib_dir))[: args.calib_images]
    if {"set5", "set14"} & {p.parent.name.lower() for p in calib_paths}:
        raise SystemExit("calibration must never use Set5 / Set14")
    calibration = [_protocol_pair(p, scale)[1] for p in calib_paths]

    t0 = time.perf_counter()
    nets: dict[str, tuple[nn.Module, torch.dtype, bool]] = {"naive": (gen, torch.float32, False)}
    folded = fold_batchnorm(gen).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    nets["fp32"] = (model._model(torch.device("cpu"), torch.float32), torch.float32, True)
    nets["bf16"] = (copy.deepcopy(folded).to(torch.bfloat16), torch.bfloat16, True)
    sessions: dict[str, Any] = {}
    if args.isa_child == "native" and any(p in args.paths for p in ORT_PATHS):
        sessions = _ort_sessions(gen, calibration, [p for p in args.paths if p in ORT_PATHS])
    args.paths = [p for p in args.paths if p not in ORT_PATHS or p in sessions]
    quant_kw: dict[str, dict[str, Any]] = {
        "int8": {},
        "int8_mixed": {"float_modules": ("head.0", "tail")},
        "int8_fp32skip": {"float_adds": True},
        "int8_hist": {"float_adds": True, "histogram": True},
        "int8_hist_mixed": {"float_adds": True, "histogram": True, "float_modules": ("head.0", "tail")},
        "int8_fbgemm": {"engine": "fbgemm", "weight_bits": 8, "activation_bits": 7},
    }
    for path, kw in quant_kw.items():
        if path in args.paths:
            nets[path] = (quantize_generator(gen, calibration, **kw), torch.float32, True)
    build_s = time.perf_counter() - t0

    def forward(path: str, x: torch.Tensor) -> torch.Tensor:
        if path == "default":
            return model.upscale_tensor(x)
        if path in sessions:
            sess = sessions[path]
            return torch.from_numpy(sess.run(None, {sess.get_inputs()[0].name: x.float().numpy()})[0])
        with contextlib.nullcontext() if path == "naive" else heap_reuse():
            return _forward_net(path, x)

    def _forward_net(path: str, x: torch.Tensor) -> torch.Tensor:
        net, dtype, cl = nets[path]
        x = x.to(dtype)
        if cl:
            x = x.contiguous(memory_format=torch.channels_last)
        return net(x).float()

    # ---- accuracy
    accuracy: dict[str, Any] = {}
    photos = sorted((ROOT / "examples" / "images").glob("*.png"))
    set14 = _images(DATA / "Set14")
    eval_sets = {"Set5": _images(DATA / "Set5"), "Set14": set14}
    reduced = [p for p in args.paths if p in REDUCED]
    with torch.inference_mode():
        per_image: dict[str, dict[str, float]] = {p: {} for p in reduced}
        psnr_y: dict[str, dict[str, float]] = {p: {} for p in ["fp32", *reduced]}
        for dataset, files in eval_sets.items():
            sums = {p: 0.0 for p in psnr_y}
            for f in files:
                hr, lr = _protocol_pair(f, scale)
                ref = forward("fp32", lr)
                for p in psnr_y:
                    out = ref if p == "fp32" else forward(p, lr)
                    sums[p] += score(quantize(out.double()), hr, scale=scale)[0]
                    if p != "fp32" and dataset == "Set14":
                        per_image[p][f"Set14/{f.name}"] = _psnr8(out, ref)
            for p in psnr_y:
                psnr_y[p][dataset] = sums[p] / len(files)
        for f in photos:
            x = _read(f).float()
            ref = forward("fp32", x)
            for p in reduced:
                per_image[p][f"examples/{f.name}"] = _psnr8(forward(p, x), ref)
    for p in reduced:
        worst = min(per_image[p], key=per_image[p].__getitem__)
        deltas = {d: psnr_y[p][d] - psnr_y["fp32"][d] for d in eval_sets}
        accuracy[p] = {
            "output_psnr_vs_fp32_db": per_image[p],
            "min_output_psnr_db": per_image[p][worst],
            "worst_image": worst,
            "psnr_y": psnr_y[p],
            "psnr_y_delta_db": deltas,
            "meets_output_bar": per_image[p][worst] >= OUTPUT_PSNR_BAR_DB,
            "meets_eval_bar": all(abs(d) <= EVAL_DELTA_BAR_DB for d in deltas.values()),
        }
    report = evaluate([model], [DATA / "Set5", DATA / "Set14"], scale=scale, include_bicubic=False, progress=False)
    evaluate_fp32 = {r.dataset: r.psnr for r in report.rows}

    # ---- speed
    flops_px = generator_flops_per_input_pixel(gen)
    peaks = {"matmul_fp32": matmul_peak(torch.float32), "matmul_bf16": matmul_peak(torch.bfloat16)}
    conv = _conv_peaks("onednn")
    peaks.update({"conv_fp32": conv["fp32"], "conv_int8": conv["int8"]})
    rows: list[dict[str, Any]] = []
    with torch.inference_mode():
        for size in args.sizes:
            x = torch.from_numpy(natural_photo(size)).permute(2, 0, 1)[None].float().div(255)
            for path in args.paths:
                try:
                    forward(path, x)  # warm-up
                except RuntimeError as e:  # e.g. bf16 on AVX2: oneDNN has no kernel, torch's im2col wants 43 GB
                    rows.append({"size": size, "path": path, "error": str(e).splitlines()[0][:300]})
                    continue
                seconds = min(_timed(lambda p=path, x=x: forward(p, x)) for _ in range(args.repeat))
                gops = flops_px * size * size / seconds / 1e9
                peak = peaks["conv_int8"] if path.endswith("int8") or "int8_" in path else peaks["conv_fp32"]
                rows.append(
                    {"size": size, "path": path, "seconds": seconds, "gops": gops, "share_of_conv_peak": gops / peak}
                )
    for r in rows:
        same = {q["path"]: q["seconds"] for q in rows if q["size"] == r["size"] and "seconds" in q}
        if "seconds" not in r:
            continue
        r["x_naive"] = same["naive"] / r["seconds"] if "naive" in same else None
        r["x_fp32"] = same["fp32"] / r["seconds"] if "fp32" in same else None
        r["x_default"] = same["default"] / r["seconds"] if "default" in same else None
    return {
        "isa": args.isa_child,
        "emulated": args.isa_child != "native",
        "env": {k: os.environ[k] for k in AVX2_ENV if k in os.environ},
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu": {
            "avx2": caps.avx2,
            "avx512f": caps.avx512f,
            "avx512_vnni": "avx512_vnni" in _flags(),
            "avx_vnni": "avx_vnni" in _flags(),
            "avx512_bf16": caps.avx512_bf16,
            "amx_bf16": caps.amx_bf16,
            "native_bf16": caps.native_bf16,
        },
        "threads": torch.get_num_threads(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "build_seconds": build_s,
        "calibration": [str(p.relative_to(DATA)) for p in calib_paths],
        "peaks_gops": peaks,
        "generator_flops_per_input_pixel": flops_px,
        "rows": rows,
        "psnr_y_fp32": psnr_y["fp32"],
        "psnr_y_fp32_evaluate": evaluate_fp32,
        "accuracy": accuracy,
    }


def _flags() -> frozenset[str]:
    from srgan.runtime import cpu_flags

    return cpu_flags()


# ----------------------------------------------------------------------------------------------------- parent
def _print(res: dict[str, Any]) -> None:
    tag = "EMULATED " + res["isa"].upper() if res["emulated"] else "native"
    print(
        f"\n## {tag}: torch capability {res['torch_cpu_capability']}, {res['threads']} threads, "
        f"load {res['loadavg_before'][0]:.1f} -> {res['loadavg_after'][0]:.1f}"
    )
    pk = res["peaks_gops"]
    print(
        f"peaks: matmul fp32 {pk['matmul_fp32']:.0f} GFLOP/s, bf16 {pk['matmul_bf16']:.0f}; "
        f"body conv fp32 {pk['conv_fp32']:.0f} GFLOP/s, int8 {pk['conv_int8']:.0f} GOP/s"
    )
    print("\n| input | path | s | x naive | x default | GOP/s | % conv peak |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in res["rows"]:
        if "error" in r:
            print(f"| {r['size']}^2 | {r['path']} | failed: {r['error'][:100]} | | | | |")
            continue
        print(
            f"| {r['size']}^2 | {r['path']} | {r['seconds']:.3f} | {r['x_naive']:.2f} | {r['x_default']:.2f} | "
            f"{r['gops']:.0f} | {100 * r['share_of_conv_peak']:.0f}% |"
        )
    fp = res["psnr_y_fp32"]
    ev = res["psnr_y_fp32_evaluate"]
    print(
        f"\nfp32 PSNR-Y: Set5 {fp['Set5']:.3f} (evaluate: {ev.get('Set5', float('nan')):.3f}), "
        f"Set14 {fp['Set14']:.3f} (evaluate: {ev.get('Set14', float('nan')):.3f})"
    )
    print("\n| path | min output PSNR vs fp32 (worst image) | Set5 PSNR-Y (delta) | Set14 PSNR-Y (delta) | bar |")
    print("|---|---|---|---|---|")
    for p, a in res["accuracy"].items():
        ok = "meets" if a["meets_output_bar"] and a["meets_eval_bar"] else "misses"
        print(
            f"| {p} | {a['min_output_psnr_db']:.2f} dB ({a['worst_image']}) | {a['psnr_y']['Set5']:.3f} "
            f"({a['psnr_y_delta_db']['Set5']:+.3f}) | {a['psnr_y']['Set14']:.3f} "
            f"({a['psnr_y_delta_db']['Set14']:+.3f}) | {ok} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="weights to use (default: the packaged default)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--paths", nargs="+", default=PATHS, choices=PATHS)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per measurement (the fastest counts)")
    ap.add_argument("--isa", nargs="+", default=["native", "avx2"], choices=["native", "avx2"])
    ap.add_argument("--calib-dir", default=str(DATA / "T91"), help="calibration images (never Set5 / Set14)")
    ap.add_argument("--calib-images", type=int, default=91, help="how many of them (sorted by name)")
    ap.add_argument("--json", default=str(HERE / "int8.json"))
    ap.add_argument("--_child", dest="isa_child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.isa_child:
        json.dump(run_child(args), sys.stdout)
        return
    base = ["naive", "default", "fp32"]
    args.paths = [*base, *[p for p in args.paths if p not in base]]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}")
    print(f"CPU flags: {' '.join(sorted(f for f in _flags() if f.startswith(('avx', 'amx', 'fma'))))}")
    results = {}
    for isa in args.isa:
        env = {**os.environ, **(AVX2_ENV if isa == "avx2" else {})}
        cmd = [
            sys.executable,
            __file__,
            "--_child",
            isa,
            "--sizes",
            *map(str, args.sizes),
            "--paths",
            *args.paths,
            "--repeat",
            str(args.repeat),
            "--calib-dir",
            args.calib_dir,
            "--calib-images",
            str(args.calib_images),
        ]
        if args.model:
            cmd += ["--model", args.model]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            print(f"{isa}: failed:\n{proc.stderr[-3000:]}")
            continue
        results[isa if isa == "native" else f"{isa}_emulated"] = res = json.loads(proc.stdout.strip().splitlines()[-1])
        _print(res)
    report = {
        "machine": {"processor": platform.processor(), "cpus": os.cpu_count(), "torch": torch.__version__},
        "bars": {"output_psnr_db": OUTPUT_PSNR_BAR_DB, "psnr_y_delta_db": EVAL_DELTA_BAR_DB, "speedup_vs_fp32": 1.5},
        "results": results,
    }
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
