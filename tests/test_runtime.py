"""Device / precision policy, CPU capabilities and torchrun's environment (srgan.runtime)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from srgan import runtime
from srgan.errors import ConfigError
from srgan.runtime import CPUCapabilities, cpu_capabilities, cpu_flags, cpu_has_native_bf16, torchrun_env

X86_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
flags\t\t: fpu sse2 avx avx2 avx512f avx512_bf16 amx_bf16 amx_tile
bogomips\t: 4800.00

processor\t: 1
flags\t\t: fpu sse2
"""

ARM_CPUINFO = """processor\t: 0
BogoMIPS\t: 48.00
Features\t: fp asimd evtstrm bf16 sve
"""


@pytest.fixture
def fresh_flags() -> Iterator[None]:
    cpu_flags.cache_clear()
    yield
    cpu_flags.cache_clear()


def test_cpuinfo_flags_of_the_first_processor() -> None:
    assert runtime._parse_cpuinfo(X86_CPUINFO) == {
        "fpu",
        "sse2",
        "avx",
        "avx2",
        "avx512f",
        "avx512_bf16",
        "amx_bf16",
        "amx_tile",
    }
    assert runtime._parse_cpuinfo(ARM_CPUINFO) == {"fp", "asimd", "evtstrm", "bf16", "sve"}
    assert runtime._parse_cpuinfo("") == frozenset()


def test_capabilities_follow_the_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh_flags: None) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text(X86_CPUINFO)
    monkeypatch.setattr(runtime, "_CPUINFO", str(info))
    monkeypatch.setattr(sys, "platform", "linux")
    caps = cpu_capabilities()
    assert (caps.avx2, caps.avx512f, caps.avx512_bf16, caps.amx_bf16) == (True, True, True, True)
    info.write_text(ARM_CPUINFO)
    cpu_flags.cache_clear()
    caps = cpu_capabilities()
    assert (caps.avx2, caps.avx512f, caps.avx512_bf16, caps.amx_bf16) == (False, False, False, False)


def test_unreadable_or_foreign_cpuinfo_gives_no_flags(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh_flags: None
) -> None:
    monkeypatch.setattr(runtime, "_CPUINFO", str(tmp_path / "missing"))
    monkeypatch.setattr(sys, "platform", "linux")
    assert cpu_flags() == frozenset()
    cpu_flags.cache_clear()
    monkeypatch.setattr(runtime, "_CPUINFO", str(Path(__file__)))  # readable, but not cpuinfo
    assert cpu_flags() == frozenset()
    cpu_flags.cache_clear()
    monkeypatch.setattr(sys, "platform", "win32")
    assert cpu_flags() == frozenset()
    assert cpu_capabilities().avx2 is False


def test_capabilities_of_this_machine(fresh_flags: None) -> None:
    caps = cpu_capabilities()
    assert isinstance(caps, CPUCapabilities)
    assert caps.native_bf16 == cpu_has_native_bf16()
    assert caps.torch_capability == torch.backends.cpu.get_cpu_capability()
    if sys.platform.startswith("linux") and Path("/proc/cpuinfo").is_file():
        flags = runtime._parse_cpuinfo(Path("/proc/cpuinfo").read_text())
        assert flags == cpu_flags()
        assert (caps.avx2, caps.avx512f) == ("avx2" in flags, "avx512f" in flags)
    if caps.avx512f:
        assert caps.avx2  # every AVX-512 CPU has AVX2


def test_torchrun_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert torchrun_env() == runtime.TorchrunEnv(rank=0, world_size=1, local_rank=0)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert torchrun_env() == runtime.TorchrunEnv(rank=3, world_size=4, local_rank=1)
    monkeypatch.setenv("WORLD_SIZE", "")  # empty counts as unset
    assert torchrun_env().world_size == 1
    monkeypatch.setenv("RANK", "first")
    with pytest.raises(ConfigError, match=r"RANK='first'"):
        torchrun_env()


def test_pipeline_still_exports_the_moved_names() -> None:
    from srgan import pipeline

    assert pipeline.resolve_device is runtime.resolve_device
    assert pipeline.resolve_dtype is runtime.resolve_dtype
    assert pipeline.cpu_has_native_bf16 is runtime.cpu_has_native_bf16


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"avx2", "avx512f", "avx512bw"}, False),  # AVX-512 without BF16: oneDNN emulates bf16 (slow)
        ({"avx2", "avx512f", "avx512_bf16"}, True),
        ({"avx2", "amx_bf16"}, True),
        (set(), True),  # flags unknown (another OS): oneDNN's answer stands
    ],
)
def test_native_bf16_needs_the_bf16_instructions_where_flags_are_known(
    monkeypatch: pytest.MonkeyPatch, flags: set[str], expected: bool
) -> None:
    import srgan.runtime as runtime

    monkeypatch.setattr(runtime.torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset(flags))
    assert runtime.cpu_has_native_bf16() is expected
