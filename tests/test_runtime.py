"""Device / precision policy, CPU capabilities and torchrun's environment (srgan.runtime)."""

from __future__ import annotations

import platform
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


class _FakeLibc:
    """Records the allocator calls heap_reuse makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int] | tuple[str, int]] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", pad))
        return 1


def test_heap_reuse_sets_the_thresholds_once_and_restores_them_at_the_last_exit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = _FakeLibc()
    monkeypatch.setattr(runtime, "_glibc", lambda: fake)
    monkeypatch.delenv("SRGAN_HEAP_REUSE", raising=False)
    with runtime.heap_reuse():
        assert fake.calls == [("mallopt", -3, 1 << 30), ("mallopt", -1, (1 << 31) - 1)]
        with runtime.heap_reuse():  # nested (or another thread): shares the scope
            runtime.heap_trim()
        assert fake.calls[-1] == ("malloc_trim", 0) and len(fake.calls) == 3
    assert fake.calls[3:] == [("mallopt", -3, 32 << 20), ("mallopt", -1, 64 << 20), ("malloc_trim", 0)]
    runtime.heap_trim()  # outside the scope: nothing
    assert len(fake.calls) == 6
    with pytest.raises(KeyError), runtime.heap_reuse():  # an error inside still restores
        raise KeyError("x")
    assert len(fake.calls) == 11 and runtime._heap_users == 0
    monkeypatch.setenv("SRGAN_HEAP_REUSE", "0")  # the opt-out
    with runtime.heap_reuse():
        runtime.heap_trim()
    assert len(fake.calls) == 11


def test_heap_reuse_on_this_machine_keeps_the_output(tiny_generator: torch.nn.Module) -> None:
    from srgan import SRGAN

    model = SRGAN(tiny_generator, device="cpu", dtype="fp32")  # type: ignore[arg-type]
    x = torch.rand(1, 3, 20, 20)
    with runtime.heap_reuse():
        inside = model.upscale_tensor(x)
    assert runtime._heap_users == 0
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        assert runtime._glibc() is not None  # the scope was real here
    torch.testing.assert_close(inside, model.upscale_tensor(x))


def test_explicit_bf16_on_a_cpu_without_native_bf16_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: False)
    with pytest.warns(RuntimeWarning, match="emulated"):
        assert runtime.resolve_dtype("bf16", torch.device("cpu")) == torch.bfloat16  # kept: an explicit choice
    assert runtime.resolve_dtype(None, torch.device("cpu")) == torch.float32
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert runtime.resolve_dtype("bf16", torch.device("cpu")) == torch.bfloat16
