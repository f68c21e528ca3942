"""Start-up benchmark: a 256^2 ``srgan upscale`` in a fresh process against the same upscale in a warm one.

    python benchmarks/startup.py [--repeat 5] [--size 256] [--json benchmarks/startup.json] [--src DIR]

Measured in one run, each the fastest of ``--repeat`` fresh processes, run round-robin so that a change of machine
load hits them alike:
  import_torch    ``python -c "import torch"`` (the interpreter's own start-up and torch's import)
  import_srgan    ``python -c "import srgan"``
  cli_upscale     ``srgan upscale small.png -o out.png``: the packaged default model on a synthetic size^2 PNG
  warm_upscale    inside one process with the model loaded and run once: the same upscale (read the PNG, upscale,
                  write the PNG), once per round between the fresh processes
That last process also times its own phases (import torch, import srgan, SRGAN.from_pretrained, the first upscale)
and lists the heavy modules it loaded (none expected: no torch._dynamo, training code, torchvision, requests).

Target (issue 16, section 3): cli_upscale <= 1.5 x (warm_upscale + import_torch). ``--src DIR`` measures the srgan
package under DIR (e.g. an older checkout's ``src``) instead of the installed one, for before/after figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

# torch, numpy, Pillow and srgan are imported inside the functions: the warm process (this script run with
# --_child) times its own first imports.

HERE = Path(__file__).resolve().parent
TARGET = 1.5
HEAVY = ("torch._dynamo", "sympy", "srgan.training", "srgan.losses", "torchvision", "requests")


def synthetic_image(size: int) -> Image.Image:
    """A size x size RGB test card: smooth gradients, edges and a little noise (deterministic)."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    rng = np.random.default_rng(0)
    rgb = np.stack([x, y, 0.5 + 0.5 * np.sin(12 * (x + y))], axis=-1)
    rgb[(x * 8).astype(int) % 2 == (y * 8).astype(int) % 2] *= 0.6
    rgb += rng.normal(0, 0.02, rgb.shape).astype(np.float32)
    return Image.fromarray((rgb.clip(0, 1) * 255).round().astype(np.uint8))


def srgan_command() -> list[str]:
    """The ``srgan`` console script beside this interpreter, else ``python -m srgan``."""
    script = Path(sys.executable).with_name("srgan")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "srgan"]


def timed(cmd: list[str], env: dict[str, str], before: Path | None = None) -> float:
    """Wall seconds of one fresh process; ``before`` (an output file) is removed first."""
    if before is not None:
        before.unlink(missing_ok=True)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
    return seconds


def warm_child(src: str, out: str) -> None:
    """In this (fresh) process: time the phases of a first upscale (one JSON line on stdout), then one warm upscale
    per line read from stdin (its seconds on stdout), until stdin closes."""
    t0 = time.perf_counter()
    import torch  # noqa: F401  # timed: the first import of torch in this process

    t1 = time.perf_counter()
    import srgan

    t2 = time.perf_counter()
    model = srgan.SRGAN.from_pretrained()
    t3 = time.perf_counter()

    def upscale() -> None:
        model.upscale(src).save(out)

    upscale()
    t4 = time.perf_counter()
    phases = {
        "import_torch": t1 - t0,
        "import_srgan": t2 - t1,
        "from_pretrained": t3 - t2,
        "first_upscale": t4 - t3,
    }
    heavy = sorted(m for m in HEAVY if m in sys.modules)
    print(json.dumps({"phases": phases, "heavy_modules": heavy, "model": repr(model)}), flush=True)
    for _ in sys.stdin:
        t = time.perf_counter()
        upscale()
        print(time.perf_counter() - t, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="fresh processes per measurement (the fastest counts)")
    ap.add_argument("--size", type=int, default=256, help="input side in pixels (default 256)")
    ap.add_argument("--json", default=str(HERE / "startup.json"))
    ap.add_argument("--src", default=None, help="measure the srgan package under this folder (prepended to PYTHONPATH)")
    ap.add_argument("--_child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        warm_child(*args._child)
        return
    import torch

    from srgan.runtime import cpu_capabilities, cpu_flags

    env = dict(os.environ)
    if args.src:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(args.src).resolve()), env.get("PYTHONPATH")]))
    caps = cpu_capabilities()
    flags = sorted(f for f in cpu_flags() if f in ("avx2", "fma") or f.startswith(("avx512", "amx")))
    load_before = list(os.getloadavg())
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}")
    print(f"cpu flags: {' '.join(flags) or '-'}; torch kernels {caps.torch_capability}; native bf16 {caps.native_bf16}")
    print(f"torch threads {torch.get_num_threads()}; load average before {' '.join(f'{v:.2f}' for v in load_before)}")

    tmp = Path(tempfile.mkdtemp(prefix="srgan-startup-"))
    try:
        small, out = tmp / "small.png", tmp / "out.png"
        synthetic_image(args.size).save(small)
        commands = {
            "import_torch": ([sys.executable, "-c", "import torch"], None),
            "import_srgan": ([sys.executable, "-c", "import srgan"], None),
            "cli_upscale": ([*srgan_command(), "upscale", str(small), "-o", str(out)], out),
        }
        times: dict[str, list[float]] = {name: [] for name in [*commands, "warm_upscale"]}
        child = [sys.executable, __file__, "--_child", str(small), str(tmp / "warm.png")]
        with subprocess.Popen(child, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
            assert proc.stdin is not None and proc.stdout is not None
            line = proc.stdout.readline()  # the model is loaded and has run once
            if not line:
                raise SystemExit("the warm process failed")
            warm: dict[str, Any] = json.loads(line)
            for _ in range(args.repeat):  # round-robin: load drift hits every measurement alike
                for name, (cmd, output) in commands.items():
                    times[name].append(timed(cmd, env, output))
                proc.stdin.write("go\n")
                proc.stdin.flush()
                times["warm_upscale"].append(float(proc.stdout.readline()))
            proc.stdin.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    best = {name: min(ts) for name, ts in times.items()}
    reference = best["warm_upscale"] + best["import_torch"]
    ratio = best["cli_upscale"] / reference
    load_after = list(os.getloadavg())
    print(f"\n| measurement ({args.size}^2 input) | best s | all s |")
    print("|---|---:|---|")
    for name in times:
        print(f"| {name} | {best[name]:.3f} | {' '.join(f'{t:.2f}' for t in times[name])} |")
    print(f"\nimport srgan over import torch: {best['import_srgan'] - best['import_torch']:+.3f} s")
    print(
        "first upscale in the warm process: "
        + ", ".join(f"{k} {v:.3f} s" for k, v in warm["phases"].items())
        + f"; heavy modules loaded: {', '.join(warm['heavy_modules']) or 'none'}"
    )
    print(
        f"\nfresh / (warm + import torch) = {best['cli_upscale']:.3f} / ({best['warm_upscale']:.3f} + "
        f"{best['import_torch']:.3f}) = {ratio:.2f}x (target <= {TARGET}x: {'met' if ratio <= TARGET else 'NOT met'})"
    )
    print(f"load average after {' '.join(f'{v:.2f}' for v in load_after)}")
    report = {
        "machine": {"processor": platform.processor(), "cpus": os.cpu_count(), "torch": torch.__version__},
        "cpu_flags": flags,
        "torch_capability": caps.torch_capability,
        "native_bf16": caps.native_bf16,
        "torch_threads": torch.get_num_threads(),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "nice": os.nice(0),
        "size": args.size,
        "repeat": args.repeat,
        "src": args.src,
        "seconds_best": best,
        "seconds_all": times,
        "warm_process": warm,
        "ratio_fresh_over_warm_plus_import_torch": ratio,
        "target": TARGET,
        "target_met": ratio <= TARGET,
    }
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
