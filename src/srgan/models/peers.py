"""Generators of other projects whose checkpoints load unchanged (compatibility module: the code lives in
:mod:`srgan.models.classic` and :mod:`srgan.models.msrresnet`)."""

from .classic import ClassicResidualBlock as ClassicResidualBlock
from .classic import ClassicSRGANConfig as ClassicSRGANConfig
from .classic import ClassicSRGANGenerator as ClassicSRGANGenerator
from .classic import ClassicUpsample as ClassicUpsample
from .classic import TrunkTail as TrunkTail
from .msrresnet import MSRResNet as MSRResNet
from .msrresnet import MSRResNetConfig as MSRResNetConfig
from .msrresnet import ResidualBlockNoBN as ResidualBlockNoBN

__all__ = [
    "ClassicResidualBlock",
    "ClassicSRGANConfig",
    "ClassicSRGANGenerator",
    "ClassicUpsample",
    "MSRResNet",
    "MSRResNetConfig",
    "ResidualBlockNoBN",
    "TrunkTail",
]
