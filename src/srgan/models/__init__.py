"""Network architectures: the SRResNet generator, the SRGAN discriminator, and the peer generators whose
checkpoints srgan loads (see :mod:`srgan.models.peers`)."""

from typing import TypeAlias

from .discriminator import Discriminator as Discriminator
from .generator import Generator as Generator
from .generator import GeneratorConfig as GeneratorConfig
from .peers import ClassicSRGANConfig as ClassicSRGANConfig
from .peers import ClassicSRGANGenerator as ClassicSRGANGenerator
from .peers import MSRResNet as MSRResNet
from .peers import MSRResNetConfig as MSRResNetConfig

SRModel: TypeAlias = Generator | ClassicSRGANGenerator | MSRResNet
"""Any generator srgan can run: its own :class:`Generator` or a peer architecture loaded from another project."""

ModelConfig: TypeAlias = GeneratorConfig | ClassicSRGANConfig | MSRResNetConfig
"""The architecture of an :data:`SRModel` (the ``config`` attribute of every model)."""

__all__ = [
    "ClassicSRGANConfig",
    "ClassicSRGANGenerator",
    "Discriminator",
    "Generator",
    "GeneratorConfig",
    "MSRResNet",
    "MSRResNetConfig",
    "ModelConfig",
    "SRModel",
]
