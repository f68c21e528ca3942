import pytest
import torch
import torch.nn.functional as F
from torch import nn

from srgan.models._subpixel import conv_before_shuffle, prelu_before_shuffle


@pytest.mark.parametrize(("k", "r", "bias"), [(9, 2, True), (3, 2, False), (1, 2, True), (5, 3, True), (7, 4, False)])
def test_conv_before_shuffle_is_the_same_conv(k: int, r: int, bias: bool) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 3, k, padding=k // 2, bias=bias).double()
    x = torch.randn(2, 4 * r * r, 7, 5, dtype=torch.float64)  # odd sizes: the zero padding at every border counts
    low = conv_before_shuffle(conv, r)
    with torch.no_grad():
        torch.testing.assert_close(low(x), conv(F.pixel_shuffle(x, r)), atol=1e-12, rtol=0)
    assert low[0].kernel_size[0] == 2 * -(-(k // 2) // r) + 1 and low[0].out_channels == 3 * r * r


def test_conv_before_shuffle_refuses_what_it_cannot_move() -> None:
    for conv in (nn.Conv2d(2, 2, 4, padding=2), nn.Conv2d(2, 2, 3, padding=0), nn.Conv2d(2, 2, 3, padding=1, stride=2)):
        with pytest.raises(ValueError, match="PixelShuffle"):
            conv_before_shuffle(conv, 2)


@pytest.mark.parametrize("channels", [1, 4])
def test_prelu_before_shuffle(channels: int) -> None:
    prelu = nn.PReLU(channels)
    with torch.no_grad():
        prelu.weight.uniform_(-1, 1)
    x = torch.randn(1, channels * 4, 3, 3)
    with torch.no_grad():
        torch.testing.assert_close(F.pixel_shuffle(prelu_before_shuffle(prelu, 2)(x), 2), prelu(F.pixel_shuffle(x, 2)))
