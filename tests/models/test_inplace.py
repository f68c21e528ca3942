import pytest
import torch
import torch.nn.functional as F
from torch import nn

from srgan.models import _inplace
from srgan.models._inplace import InplacePReLU


def _prelu(channels: int) -> nn.PReLU:
    prelu = nn.PReLU(channels)
    with torch.no_grad():  # slopes of every kind: negative, in [0, 1], above 1
        prelu.weight.copy_(torch.linspace(-0.5, 1.5, channels) if channels > 1 else torch.tensor([0.2]))
    return prelu.requires_grad_(False)


@pytest.mark.parametrize("channels", [1, 64])
@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_same_bits_as_prelu_and_overwrites_its_input(channels: int, channels_last: bool, dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    prelu = _prelu(channels).to(dtype)
    # 2 x 64 x 300 fp32 values per row are 150 KiB: several chunks, the last one short
    x = torch.randn(2, channels, 37, 300, dtype=dtype)
    x[0, 0, 0, :3] = torch.tensor([0.0, -0.0, float("nan")], dtype=dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    expected = F.prelu(x, prelu.weight)
    with torch.no_grad():
        out = InplacePReLU(prelu)(x)
    assert out is x  # in place
    torch.testing.assert_close(out, expected, rtol=0, atol=0, equal_nan=True)


def test_chunks_cover_every_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_inplace, "_CHUNK_BYTES", 1)  # one row per chunk
    prelu = _prelu(3)
    x = torch.randn(1, 3, 5, 4)
    expected = F.prelu(x, prelu.weight)
    with torch.inference_mode():
        assert torch.equal(InplacePReLU(prelu)(x), expected)


@pytest.mark.filterwarnings(r"ignore:`torch\.jit\.trace(_method)?` is deprecated:FutureWarning")
def test_plain_prelu_under_autograd_and_tracing() -> None:
    prelu = nn.PReLU(4)
    x = torch.randn(1, 4, 6, 6, requires_grad=True)
    kept = x.detach().clone()
    out = InplacePReLU(prelu)(x)
    assert out is not x and torch.equal(x.detach(), kept)
    out.sum().backward()  # the slopes and the input get gradients, as with nn.PReLU
    assert x.grad is not None and prelu.weight.grad is not None

    y = torch.randn(1, 4, 6, 6)
    kept = y.clone()
    with torch.no_grad():
        traced = torch.jit.trace(InplacePReLU(prelu.requires_grad_(False)), y)  # type: ignore[no-untyped-call]
    assert torch.equal(y, kept)  # tracing runs the plain PReLU and leaves the example as it was
    assert torch.equal(traced(y), F.prelu(y, prelu.weight)) and torch.equal(y, kept)
