"""Network architectures: the SRResNet generator and the SRGAN discriminator."""

from .discriminator import Discriminator as Discriminator
from .generator import Generator as Generator
from .generator import GeneratorConfig as GeneratorConfig

__all__ = ["Discriminator", "Generator", "GeneratorConfig"]
