"""Tiny random peer models for tests (shared by the peer, loading, pipeline, export and transform tests)."""

from __future__ import annotations

import torch
from torch import nn

from srgan.models import ClassicSRGANGenerator, MSRResNet


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial weights everywhere: BN statistics/affine, PReLU slopes and biases (so a wrong mapping shows)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=gen) * 0.2 - 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen) * 0.2 - 0.1)
                m.num_batches_tracked.fill_(1234)
            elif isinstance(m, nn.PReLU):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) * 0.3)
            elif isinstance(m, nn.Conv2d) and m.bias is not None:
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen) * 0.02 - 0.01)
    return model.eval()


def classic(
    scale: int = 4, num_blocks: int = 2, channels: int = 8, trunk_tail: str = "batchnorm"
) -> ClassicSRGANGenerator:
    m = ClassicSRGANGenerator(scale=scale, num_blocks=num_blocks, channels=channels, trunk_tail=trunk_tail)  # type: ignore[arg-type]
    randomize(m)
    return m


def msrresnet(scale: int = 4, num_blocks: int = 2, channels: int = 8) -> MSRResNet:
    m = MSRResNet(scale=scale, num_blocks=num_blocks, channels=channels)
    randomize(m)
    return m
