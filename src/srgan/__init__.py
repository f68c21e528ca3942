"""srgan: photo-realistic single-image super-resolution (SRGAN / SRResNet, Ledig et al. 2017) for PyTorch.

Quick start::

    from PIL import Image
    from srgan import SRGAN

    model = SRGAN.from_pretrained()          # packaged default weights, works offline
    big = model.upscale(Image.open("photo.png"))
"""

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__ as __version__
from .degradation import BicubicDegradation as BicubicDegradation
from .degradation import BlurDownsampleDegradation as BlurDownsampleDegradation
from .errors import SRGANError as SRGANError
from .metrics import psnr as psnr
from .metrics import ssim as ssim
from .models import Discriminator as Discriminator
from .models import Generator as Generator
from .pipeline import SRGAN as SRGAN
from .transforms import SuperResolution as SuperResolution

if TYPE_CHECKING:
    from .evaluation import EvaluationReport as EvaluationReport
    from .evaluation import evaluate as evaluate
    from .losses import AdversarialLoss as AdversarialLoss
    from .losses import PerceptualLoss as PerceptualLoss
    from .losses import PixelLoss as PixelLoss
    from .training import TrainConfig as TrainConfig
    from .training import Trainer as Trainer

# Imported on first use, so that ``import srgan`` loads the inference side only (no training code, no torchvision
# models, no data loaders): public name -> the module that defines it.
_LAZY = {
    "AdversarialLoss": ".losses",
    "PerceptualLoss": ".losses",
    "PixelLoss": ".losses",
    "EvaluationReport": ".evaluation",
    "evaluate": ".evaluation",
    "TrainConfig": ".training",
    "Trainer": ".training",
}
# Submodules that ``import srgan`` used to load, still reachable as attributes (``srgan.training``).
_LAZY_SUBMODULES = frozenset({"evaluation", "losses", "niqe", "training"})

__all__ = [
    "SRGAN",
    "AdversarialLoss",
    "BicubicDegradation",
    "BlurDownsampleDegradation",
    "Discriminator",
    "EvaluationReport",
    "Generator",
    "PerceptualLoss",
    "PixelLoss",
    "SRGANError",
    "SuperResolution",
    "TrainConfig",
    "Trainer",
    "__version__",
    "evaluate",
    "psnr",
    "ssim",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    elif name in _LAZY_SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | _LAZY_SUBMODULES)
