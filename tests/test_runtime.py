"""Device / precision policy, CPU capabilities and torchrun's environment (srgan.runtime)."""

from __future__ import annotations

import os
import platform
import sys
import time
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


@pytest.fixture
def fake_libc(monkeypatch: pytest.MonkeyPatch) -> Iterator[_FakeLibc]:
    """glibc replaced by a recorder, with nothing kept from an earlier test's scope; released again at the end."""
    runtime.heap_release()
    fake = _FakeLibc()
    monkeypatch.setattr(runtime, "_glibc", lambda: fake)
    monkeypatch.delenv("SRGAN_HEAP_REUSE", raising=False)
    yield fake
    runtime.heap_release()


_RAISE = [("mallopt", -3, 1 << 30), ("mallopt", -1, (1 << 31) - 1)]
_RESTORE = [("mallopt", -3, 32 << 20), ("mallopt", -1, 64 << 20), ("malloc_trim", 0)]


def test_heap_reuse_sets_the_thresholds_once_and_keeps_them_until_released(
    fake_libc: _FakeLibc, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = fake_libc
    with runtime.heap_reuse():
        assert fake.calls == _RAISE
        with runtime.heap_reuse():  # nested (or another thread): shares the scope
            runtime.heap_trim()
            runtime.heap_release()  # a scope is active: nothing
        assert fake.calls == [*_RAISE, ("malloc_trim", 0)]
    assert len(fake.calls) == 3  # the last exit keeps the memory for the next call...
    runtime.heap_trim()  # outside a scope: nothing
    with runtime.heap_reuse():  # ...which takes it over without setting anything again
        pass
    assert len(fake.calls) == 3
    runtime.heap_release()  # now: thresholds restored, free memory returned
    assert fake.calls[3:] == _RESTORE
    runtime.heap_release()  # nothing kept any more
    assert len(fake.calls) == 6
    with pytest.raises(KeyError), runtime.heap_reuse():  # an error inside still ends the scope
        raise KeyError("x")
    assert runtime._heap_users == 0
    runtime.heap_release()
    assert fake.calls[6:] == [*_RAISE, *_RESTORE]
    monkeypatch.setenv("SRGAN_HEAP_REUSE", "0")  # the opt-out
    with runtime.heap_reuse():
        runtime.heap_trim()
    runtime.heap_release()
    assert len(fake.calls) == 11


def test_the_kept_heap_is_released_after_the_delay(fake_libc: _FakeLibc, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "_HEAP_RELEASE_DELAY_S", 0.05)
    with runtime.heap_reuse():
        pass
    deadline = time.monotonic() + 10
    while len(fake_libc.calls) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fake_libc.calls == [*_RAISE, *_RESTORE]
    assert runtime._heap_kept is None
    # A scope that starts in time cancels the release: the timer that fires late does nothing.
    monkeypatch.setattr(runtime, "_HEAP_RELEASE_DELAY_S", 0.2)
    with runtime.heap_reuse():
        pass
    timer = runtime._heap_kept.timer if runtime._heap_kept is not None else None
    assert timer is not None
    with runtime.heap_reuse():
        timer.join(1)
        time.sleep(0.3)
        assert len(fake_libc.calls) == 7  # no restore while the new scope runs
    runtime.heap_release()
    assert fake_libc.calls[5:] == [*_RAISE, *_RESTORE]


def test_a_forked_child_starts_with_the_allocator_restored(fake_libc: _FakeLibc) -> None:
    with runtime.heap_reuse():
        pass
    runtime._heap_after_fork_in_child()  # what os.register_at_fork runs in the child
    assert runtime._heap_kept is None
    assert fake_libc.calls == [*_RAISE, *_RESTORE[:2]]  # restored; no trim needed in a fresh child


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_fork_runs_the_child_hook(fake_libc: _FakeLibc) -> None:
    with runtime.heap_reuse():
        pass
    assert runtime._heap_kept is not None
    pid = os.fork()
    if pid == 0:  # the child: nothing kept, the thresholds restored
        os._exit(0 if runtime._heap_kept is None and fake_libc.calls[-1] == _RESTORE[1] else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert runtime._heap_kept is not None  # the parent keeps its memory until the timer or a release


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
