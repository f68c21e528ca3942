"""Where and how computation runs: device and precision policy, CPU capabilities, the host allocator during
inference, the torchrun environment.

The bottom layer with :mod:`srgan.errors`: it imports nothing else of srgan, so inference, evaluation, training and
the command lines all share one answer to "which device", "which dtype" and "which rank".
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from .errors import ConfigError

__all__ = [
    "CPUCapabilities",
    "TorchrunEnv",
    "cpu_capabilities",
    "cpu_flags",
    "cpu_has_native_bf16",
    "env_int",
    "env_local_rank",
    "env_rank",
    "env_world_size",
    "heap_release",
    "heap_reuse",
    "heap_trim",
    "resolve_device",
    "resolve_dtype",
    "torchrun_env",
]

logger = logging.getLogger(__name__)

_DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "float": torch.float32,
    "fp16": torch.float16,
    "float16": torch.float16,
    "half": torch.float16,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
}

_CPUINFO = "/proc/cpuinfo"

# ---------------------------------------------------------------------------------------------------------------
# Devices and precision


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` or ``"auto"`` picks CUDA, then MPS, then CPU; anything else is passed to :class:`torch.device`."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ConfigError(f"invalid device {device!r}: use 'auto', 'cpu', 'cuda', 'cuda:1' or 'mps'") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available: use device='cpu' or 'auto'")
    return dev


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 convolutions natively (AVX512-BF16 / AMX); False where unknown.

    oneDNN's own check also answers yes on AVX-512 CPUs without the BF16 extension, where bf16 is emulated and
    about 3x slower than float32 (measured on an AVX-512 Xeon without avx512_bf16): on x86 Linux, where the
    kernel reports the CPU's flags, the flags decide.
    """
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        supported = bool(check()) if check is not None else False
    except RuntimeError:
        return False
    flags = cpu_flags()
    if supported and "avx2" in flags:  # x86 with known flags: emulated unless the BF16 instructions exist
        return bool({"avx512_bf16", "amx_bf16"} & flags)
    return supported


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """The compute dtype for ``device``.

    ``None`` means fp16 on CUDA, bf16 on CPUs that compute bf16 natively (AVX512-BF16 / AMX; about 59 dB PSNR
    against fp32 output with the packaged model) and fp32 elsewhere. fp16 on a CPU (slow or unsupported there)
    becomes bf16 where the CPU has native bf16 and fp32 otherwise, with a warning. bf16 asked for on a CPU without
    native bf16 is kept (an explicit choice) with a warning that it is emulated and slow.
    """
    if dtype is None:
        if device.type == "cuda":
            return torch.float16
        if device.type == "cpu" and cpu_has_native_bf16():
            return torch.bfloat16
        return torch.float32
    if isinstance(dtype, str):
        try:
            dtype = _DTYPES[dtype.lower()]
        except KeyError:
            raise ConfigError(f"unknown dtype {dtype!r}: use one of {sorted(set(_DTYPES))}") from None
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ConfigError(f"dtype must be float32, float16 or bfloat16, got {dtype}")
    if dtype == torch.bfloat16 and device.type == "cpu" and not cpu_has_native_bf16():
        warnings.warn(
            "bfloat16 on this CPU is emulated (no AVX512-BF16 or AMX): measured 4-10x slower than float32, with "
            "large temporary buffers; dtype=None picks float32 here",
            RuntimeWarning,
            stacklevel=3,
        )
    if dtype == torch.float16 and device.type == "cpu":
        chosen = torch.bfloat16 if cpu_has_native_bf16() else torch.float32
        warnings.warn(f"float16 is not supported well on CPU; using {chosen} instead", RuntimeWarning, stacklevel=3)
        return chosen
    return dtype


# ---------------------------------------------------------------------------------------------------------------
# The host allocator during inference

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
_HEAP_MMAP_THRESHOLD = 1 << 30
_HEAP_TRIM_THRESHOLD = (1 << 31) - 1
# What the call leaves: glibc's own dynamic thresholds reach these once a process has freed a 32 MiB block.
_RESTORED_MMAP_THRESHOLD, _RESTORED_TRIM_THRESHOLD = 32 << 20, 64 << 20
# How long the last scope's free memory stays with the process for the next call before it is returned.
_HEAP_RELEASE_DELAY_S = 2.0
_heap_lock = threading.Lock()
_heap_users = 0
_heap_kept: _KeptHeap | None = None  # the pending release after the last scope ended


@dataclass
class _KeptHeap:
    """The raised thresholds and free memory left by the last scope, and the timer that will release them."""

    libc: ctypes.CDLL
    timer: threading.Timer


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (Linux), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018  # glibc only (not musl)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return libc


def _restore_heap(libc: ctypes.CDLL, *, trim: bool = True) -> None:
    libc.mallopt(_M_MMAP_THRESHOLD, _RESTORED_MMAP_THRESHOLD)
    libc.mallopt(_M_TRIM_THRESHOLD, _RESTORED_TRIM_THRESHOLD)
    if trim:
        libc.malloc_trim(0)


def _release_kept_heap(only: _KeptHeap | None = None) -> None:
    """Release what the last scope left (cancel its timer, restore glibc's thresholds, trim), unless a scope is
    active or nothing is kept; with ``only`` (a timer's own record), unless a new scope has taken it over since."""
    global _heap_kept
    with _heap_lock:
        kept = _heap_kept
        if kept is None or _heap_users or (only is not None and kept is not only):
            return
        kept.timer.cancel()
        _heap_kept = None
        _restore_heap(kept.libc)


@contextlib.contextmanager
def heap_reuse() -> Iterator[None]:
    """Inside: the C heap keeps and reuses the memory of freed activations instead of returning it to the system
    after every layer; it is returned (``malloc_trim``) 2 s after the last scope ends, unless another scope starts
    before then and reuses it. glibc (Linux) only; elsewhere, or with ``SRGAN_HEAP_REUSE=0``, nothing changes.

    Each activation of a large tile is tens to hundreds of MB. glibc serves those with a fresh ``mmap`` and unmaps
    them on free, so every layer page-faults its output in again: measured 30 % of a 512x512 upscale on a 2-core
    CPU (5.8 s -> 4.0 s with reuse). Inside the context glibc's mmap threshold is 1 GiB and its trim threshold
    2 GiB. These are process-wide settings: nested and concurrent calls share one scope. When the last one leaves,
    the thresholds and the free memory stay for 2 s (a daemon timer), so a loop of calls does not page-fault its
    memory in again on every call (7 % of a 256x256 upscale); then glibc gets thresholds of 32 MiB and 64 MiB
    (what its dynamic thresholds reach in a process that has freed a 32 MiB block; setting them disables the
    dynamic adjustment) and the free memory goes back. :func:`heap_release` does that at once.
    """
    global _heap_users, _heap_kept
    libc = _glibc() if os.environ.get("SRGAN_HEAP_REUSE", "1") != "0" else None
    if libc is None:
        yield
        return
    with _heap_lock:
        if _heap_users == 0:
            if _heap_kept is not None:  # the last scope's memory is still here: take it over
                _heap_kept.timer.cancel()
                _heap_kept = None
            else:
                libc.mallopt(_M_MMAP_THRESHOLD, _HEAP_MMAP_THRESHOLD)
                libc.mallopt(_M_TRIM_THRESHOLD, _HEAP_TRIM_THRESHOLD)
        _heap_users += 1
    try:
        yield
    finally:
        with _heap_lock:
            _heap_users -= 1
            if _heap_users == 0:
                timer = threading.Timer(_HEAP_RELEASE_DELAY_S, lambda: _release_kept_heap(kept))
                timer.daemon = True
                kept = _heap_kept = _KeptHeap(libc=libc, timer=timer)
                timer.start()


def heap_trim() -> None:
    """Inside :func:`heap_reuse`: return the free memory of the C heap to the system now (between the tiles of a
    large image, where what one tile freed would otherwise stay resident beside the next tile's activations).
    Elsewhere nothing."""
    libc = _glibc()
    if libc is not None and _heap_users > 0:
        libc.malloc_trim(0)


def heap_release() -> None:
    """Return the memory the last :func:`heap_reuse` scope left to the system now, instead of 2 s after that scope
    ended, and restore glibc's thresholds (before measuring resident memory, or before a memory-hungry step of
    your own). Nothing while a scope is active or when nothing is kept."""
    _release_kept_heap()


def _heap_after_fork_in_child() -> None:
    """A forked child has no timer thread (and may have copied a lock another thread held): if the parent's last
    scope kept its heap, the child restores glibc's thresholds at once, so its own frees return memory as usual (the
    fork hook itself does not trim)."""
    global _heap_lock, _heap_kept
    _heap_lock = threading.Lock()
    kept, _heap_kept = _heap_kept, None
    if kept is not None:
        _restore_heap(kept.libc, trim=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_heap_after_fork_in_child)


# ---------------------------------------------------------------------------------------------------------------
# CPU capabilities


def _parse_cpuinfo(text: str) -> frozenset[str]:
    """The feature flags of the first processor in ``/proc/cpuinfo`` text (``flags`` on x86, ``Features`` on Arm)."""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("flags", "features"):
            return frozenset(value.split())
    return frozenset()


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as the Linux kernel reports them (``avx2``, ``avx512f``, ``amx_bf16``...).

    Read once from ``/proc/cpuinfo``; empty on other systems or where the file cannot be read.
    """
    if not sys.platform.startswith("linux"):
        return frozenset()
    try:
        with open(_CPUINFO, encoding="utf-8", errors="replace") as f:
            return _parse_cpuinfo(f.read())
    except OSError as e:
        logger.debug("cannot read %s: %s", _CPUINFO, e)
        return frozenset()


@dataclass(frozen=True)
class CPUCapabilities:
    """What this CPU offers for inference; the instruction-set flags are False where unknown.

    Attributes:
        avx2, avx512f, avx512_bf16, amx_bf16: the instruction-set extensions (from :func:`cpu_flags`).
        native_bf16: whether oneDNN runs bf16 convolutions natively (:func:`cpu_has_native_bf16`); this decides
            the default CPU dtype.
        torch_capability: the kernel set PyTorch dispatches to, ``torch.backends.cpu.get_cpu_capability()``
            (``"AVX2"``, ``"AVX512"``, ``"DEFAULT"``...), or ``"unknown"`` on PyTorch builds without it.
    """

    avx2: bool
    avx512f: bool
    avx512_bf16: bool
    amx_bf16: bool
    native_bf16: bool
    torch_capability: str


def cpu_capabilities() -> CPUCapabilities:
    """The capabilities of this machine's CPU (see :class:`CPUCapabilities`)."""
    flags = cpu_flags()
    try:
        capability = str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        capability = "unknown"
    return CPUCapabilities(
        avx2="avx2" in flags,
        avx512f="avx512f" in flags,
        avx512_bf16="avx512_bf16" in flags,
        amx_bf16="amx_bf16" in flags,
        native_bf16=cpu_has_native_bf16(),
        torch_capability=capability,
    )


# ---------------------------------------------------------------------------------------------------------------
# torchrun's environment


def env_int(name: str, default: int) -> int:
    """The integer environment variable ``name``; ``default`` when unset or empty.

    Raises:
        ConfigError: the variable is set but is not an integer.
    """
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not an integer (set by torchrun)") from None


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (set by torchrun); 1 when absent."""
    return env_int("WORLD_SIZE", 1)


def env_rank() -> int:
    """``RANK`` from the environment (set by torchrun); 0 when absent."""
    return env_int("RANK", 0)


def env_local_rank(default: int = 0) -> int:
    """``LOCAL_RANK`` from the environment (set by torchrun): this process's device index on its machine."""
    return env_int("LOCAL_RANK", default)


@dataclass(frozen=True)
class TorchrunEnv:
    """This process's place among the processes torchrun started: ``rank`` of ``world_size``, ``local_rank`` on its
    machine. A process started without torchrun is rank 0 of 1."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0


def torchrun_env() -> TorchrunEnv:
    """``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` from the environment.

    Raises:
        ConfigError: one of them is set but is not an integer.
    """
    return TorchrunEnv(rank=env_rank(), world_size=max(1, env_world_size()), local_rank=env_local_rank())
