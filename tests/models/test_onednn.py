from collections.abc import Iterator

import pytest
import torch
from torch import nn

from srgan.models import _onednn
from srgan.models._onednn import FusedResidualBody, fused_add_available


@pytest.fixture(autouse=True)
def _fresh_check() -> Iterator[None]:
    fused_add_available.cache_clear()
    yield
    fused_add_available.cache_clear()


def _blocks(n: int, c: int) -> list[tuple[nn.Module, nn.Module, nn.Module]]:
    torch.manual_seed(0)
    blocks = []
    for _ in range(n):
        conv1, conv2 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)
        prelu = nn.PReLU(c)
        with torch.no_grad():
            prelu.weight.uniform_(-0.2, 0.5)
        blocks.append((conv1, prelu, conv2))
    return blocks


def _reference(blocks: list[tuple[nn.Module, nn.Module, nn.Module]], x: torch.Tensor) -> torch.Tensor:
    for conv1, act, conv2 in blocks:
        x = x + conv2(act(conv1(x)))
    return x


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = _onednn._conv_add_

    def counted(acc: torch.Tensor, x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
        calls.append(1)
        return real(acc, x, conv)

    monkeypatch.setattr(_onednn, "_conv_add_", counted)
    return calls


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")
def test_fused_path_runs_here_and_matches_the_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    assert fused_add_available()  # every x86/arm64 torch wheel has oneDNN and this op
    calls = _counting(monkeypatch)
    blocks = _blocks(3, 16)
    body = FusedResidualBody(blocks).requires_grad_(False).to(memory_format=torch.channels_last)
    x = torch.randn(2, 16, 13, 19).contiguous(memory_format=torch.channels_last)
    kept = x.clone()
    with torch.inference_mode():
        out = body(x)
        expected = _reference(blocks, x)
    assert len(calls) == 3  # the fused op ran for every block
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(x, kept)  # the caller's map (srgan's long skip) is not overwritten


@pytest.mark.parametrize("case", ["nchw", "float64", "autograd", "opt_out"])
def test_plain_path_elsewhere(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting(monkeypatch)
    blocks = _blocks(2, 8)
    body = FusedResidualBody(blocks)
    x = torch.randn(1, 8, 9, 7).contiguous(memory_format=torch.channels_last)
    if case == "nchw":
        x = x.contiguous()
    elif case == "float64":
        body, x = body.double(), x.double()
    elif case == "opt_out":
        monkeypatch.setenv("SRGAN_ONEDNN_FUSION", "0")
        assert not fused_add_available()
    if case == "autograd":
        out = body(x)
        out.sum().backward()  # trains like the blocks it holds
        assert body.conv2[0].weight.grad is not None
    else:
        with torch.no_grad():
            out = body(x)
    assert calls == []
    with torch.no_grad():
        torch.testing.assert_close(out, _reference(blocks, x), rtol=1e-6, atol=1e-6)


def test_a_wrong_result_disables_the_fusion(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(_onednn, "_conv_add_", lambda acc, x, conv: acc)  # an op that adds nothing
    assert not fused_add_available()
    assert "different result" in caplog.text


def test_a_missing_op_disables_the_fusion(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(acc: torch.Tensor, x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
        raise RuntimeError("no such op")

    monkeypatch.setattr(_onednn, "_conv_add_", missing)
    assert not fused_add_available()


def test_refuses_convs_that_change_the_shape() -> None:
    with pytest.raises(ValueError, match="shape-preserving Conv2d"):
        FusedResidualBody([(nn.Conv2d(4, 8, 3, padding=1), nn.PReLU(), nn.Conv2d(8, 4, 3, padding=1))])
    with pytest.raises(ValueError, match="numeric zero padding"):
        FusedResidualBody([(nn.Conv2d(4, 4, 3, padding="same"), nn.PReLU(), nn.Conv2d(4, 4, 3, padding=1))])
