"""Residual blocks with the skip addition fused into the second convolution (oneDNN's sum post-op), for CPU
inference.

Eager PyTorch runs ``x + conv2(act(conv1(x)))`` as two convolutions and an addition that reads both maps and writes
a third: at 256x256 with 64 channels that is 48 MB of memory traffic and a fresh 16 MB map per block. oneDNN can add
a convolution's result into an existing map as it writes it (the "sum" post-op, which PyTorch reaches through
``torch.ops.mkldnn._convolution_pointwise_``, the op its own compiler uses for the same fusion): the trunk's running
map is then updated in place, block after block. Same arithmetic (the convolution's fp32 result added to the map,
one rounding), same output. Measured on a 2-core AVX-512 CPU: 16 blocks at 256x256 584 ms -> 503 ms; a whole 256x256
upscale 2-3 % faster.

The op is private to PyTorch, so it is used only where it is known to work: a CPU float32 tensor in channels_last
layout, no autograd, outside tracing, ``torch.compile`` and ONNX export, and after a one-time check against the
plain computation on this machine. Everywhere else (GPU, half precision, training, export) the blocks run the plain
way. ``SRGAN_ONEDNN_FUSION=0`` in the environment turns the fused path off.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable

import torch
from torch import nn

from ._eager import eager_inference

__all__ = ["FusedResidualBody", "fused_add_available"]

logger = logging.getLogger(__name__)


def _conv_add_(acc: torch.Tensor, x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``acc += conv(x)`` in place (oneDNN sum post-op); returns ``acc``."""
    op = torch.ops.mkldnn._convolution_pointwise_.binary
    out: torch.Tensor = op(
        acc,
        x,
        conv.weight,
        conv.bias,
        list(conv.padding),  # 'same'/'valid' strings are refused by _check_conv
        list(conv.stride),
        list(conv.dilation),
        conv.groups,
        "add",
        None,
        None,
        [],
        None,
    )
    return out


@functools.cache
def fused_add_available() -> bool:
    """Whether the fused convolution + addition runs here and gives the plain result (checked once per process on
    a small random case, within 1e-5); False when ``SRGAN_ONEDNN_FUSION=0``."""
    if os.environ.get("SRGAN_ONEDNN_FUSION", "1") == "0":
        return False
    try:
        if not torch.backends.mkldnn.is_available():  # type: ignore[no-untyped-call]
            return False
        gen = torch.Generator().manual_seed(0)
        conv = nn.Conv2d(8, 8, 3, padding=1).requires_grad_(False).to(memory_format=torch.channels_last)
        with torch.no_grad():
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen))
            if conv.bias is not None:
                conv.bias.copy_(torch.randn(8, generator=gen))
            x = torch.randn(2, 8, 7, 9, generator=gen).contiguous(memory_format=torch.channels_last)
            acc = torch.randn(2, 8, 7, 9, generator=gen).contiguous(memory_format=torch.channels_last)
            expected = acc + conv(x)
            got = _conv_add_(acc.clone(), x, conv)
        ok = bool(torch.allclose(got, expected, rtol=1e-5, atol=1e-5))
    except Exception as e:  # a torch build without the op, or one that rejects these arguments
        logger.debug("oneDNN fused conv + add unavailable: %s", e)
        return False
    if not ok:
        logger.warning("oneDNN fused conv + add gave a different result from conv + add on this machine; not used")
    return ok


def _check_conv(conv: nn.Module) -> nn.Conv2d:
    if (
        not isinstance(conv, nn.Conv2d)
        or isinstance(conv.padding, str)
        or conv.padding_mode != "zeros"
        or conv.in_channels != conv.out_channels
    ):
        raise ValueError(f"expected a shape-preserving Conv2d with numeric zero padding, got {conv}")
    return conv


class FusedResidualBody(nn.Module):
    """A chain of residual blocks ``x -> x + conv2(act(conv1(x)))`` (BatchNorm already folded into the convs):
    (N, C, H, W) -> (N, C, H, W), the same as running the blocks one after another.

    On a CPU float32 channels_last input without autograd the running map is copied once and each block's second
    convolution adds into it in place (module docstring); otherwise the blocks run as they are.

    Args:
        blocks: ``(conv1, act, conv2)`` of each block, in order (at least one); the convs map C channels to C
            (numeric padding).

    Raises:
        ValueError: no blocks, or a conv not of that form.
    """

    def __init__(self, blocks: Iterable[tuple[nn.Module, nn.Module, nn.Module]]) -> None:
        super().__init__()
        self.conv1 = nn.ModuleList()
        self.act = nn.ModuleList()
        self.conv2 = nn.ModuleList()
        for conv1, act, conv2 in blocks:
            self.conv1.append(_check_conv(conv1))
            self.act.append(act)
            self.conv2.append(_check_conv(conv2))
        if not self.conv1:
            raise ValueError("FusedResidualBody needs at least one block")

    def _fusable(self, x: torch.Tensor) -> bool:
        if not eager_inference(x, self):  # first: under torch.fx, x's attributes are proxies
            return False
        weight = self.conv1[0].weight  # the module moves as a whole (.to): one weight tells its device and dtype
        if x.device.type != "cpu" or x.dtype != torch.float32 or x.dim() != 4:
            return False
        if weight.device.type != "cpu" or weight.dtype != torch.float32:
            return False
        return x.is_contiguous(memory_format=torch.channels_last) and fused_add_available()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._fusable(x):
            for conv1, act, conv2 in zip(self.conv1, self.act, self.conv2, strict=True):
                x = x + conv2(act(conv1(x)))
            return x
        y = x.clone(memory_format=torch.channels_last)  # the caller's map stays as it is
        for conv1, act, conv2 in zip(self.conv1, self.act, self.conv2, strict=True):
            assert isinstance(conv2, nn.Conv2d)
            _conv_add_(y, act(conv1(y)), conv2)
        return y
