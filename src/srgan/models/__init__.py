"""Network architectures: srgan's SRResNet generator and discriminator, and the generators of other projects whose
checkpoints srgan loads. Each architecture is described once in :mod:`srgan.models.registry`."""

from . import registry as registry
from .classic import ClassicSRGANConfig as ClassicSRGANConfig
from .classic import ClassicSRGANGenerator as ClassicSRGANGenerator
from .discriminator import Discriminator as Discriminator
from .discriminator import DiscriminatorConfig as DiscriminatorConfig
from .generator import Generator as Generator
from .generator import GeneratorConfig as GeneratorConfig
from .msrresnet import MSRResNet as MSRResNet
from .msrresnet import MSRResNetConfig as MSRResNetConfig
from .registry import Architecture as Architecture
from .registry import ModelConfig as ModelConfig
from .registry import SRModel as SRModel

__all__ = [
    "Architecture",
    "ClassicSRGANConfig",
    "ClassicSRGANGenerator",
    "Discriminator",
    "DiscriminatorConfig",
    "Generator",
    "GeneratorConfig",
    "MSRResNet",
    "MSRResNetConfig",
    "ModelConfig",
    "SRModel",
    "registry",
]
