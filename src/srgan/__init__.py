"""srgan: photo-realistic single-image super-resolution (SRGAN / SRResNet, Ledig et al. 2017) for PyTorch.

Quick start::

    from PIL import Image
    from srgan import SRGAN

    model = SRGAN.from_pretrained()          # packaged default weights, works offline
    big = model.upscale(Image.open("photo.png"))
"""

from ._version import __version__ as __version__
from .degradation import BicubicDegradation as BicubicDegradation
from .degradation import BlurDownsampleDegradation as BlurDownsampleDegradation
from .errors import SRGANError as SRGANError
from .evaluation import EvaluationReport as EvaluationReport
from .evaluation import evaluate as evaluate
from .losses import AdversarialLoss as AdversarialLoss
from .losses import PerceptualLoss as PerceptualLoss
from .losses import PixelLoss as PixelLoss
from .metrics import psnr as psnr
from .metrics import ssim as ssim
from .models import Discriminator as Discriminator
from .models import Generator as Generator
from .pipeline import SRGAN as SRGAN
from .training import TrainConfig as TrainConfig
from .training import Trainer as Trainer
from .transforms import SuperResolution as SuperResolution

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
