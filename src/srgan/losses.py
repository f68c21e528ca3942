"""Training losses: pixel (L1 / MSE / Charbonnier), perceptual (VGG19 feature maps) and adversarial (on logits).

SRGAN (Ledig et al. 2017) trains the generator with ``l_VGG/5.4 + 1e-3 * l_Gen``: the MSE between VGG19 ``relu5_4``
feature maps rescaled by 1/12.75 (:class:`PerceptualLoss`) plus the adversarial term of a binary-cross-entropy GAN
(:class:`AdversarialLoss` with ``kind="bce"``). ESRGAN's relativistic average GAN is ``kind="relativistic"``.

Images are (N, 3, H, W) float tensors in [0, 1]; discriminator outputs are raw logits (no sigmoid), any shape.
Every loss returns a 0-d tensor (the mean over the batch).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import VGG19_Weights, vgg19

from .errors import ConfigError, InvalidImageError, SRGANError

__all__ = [
    "PixelLossKind",
    "pixel_loss",
    "PixelLoss",
    "vgg19_layer_names",
    "perceptual_loss",
    "PerceptualLoss",
    "AdversarialKind",
    "bce_generator_loss",
    "bce_discriminator_loss",
    "relativistic_generator_loss",
    "relativistic_discriminator_loss",
    "AdversarialLoss",
    "feature_matching_loss",
]

logger = logging.getLogger(__name__)

PixelLossKind = Literal["l1", "mse", "charbonnier"]
AdversarialKind = Literal["bce", "relativistic"]
_PIXEL_KINDS: tuple[str, ...] = ("l1", "mse", "charbonnier")
_CRITERIA: tuple[str, ...] = ("mse", "l1")
_ADVERSARIAL_KINDS: tuple[str, ...] = ("bce", "relativistic")

_M = TypeVar("_M", bound="PerceptualLoss")


def _check_pair(sr: torch.Tensor, hr: torch.Tensor) -> None:
    for name, x in (("sr", sr), ("hr", hr)):
        if not isinstance(x, torch.Tensor):
            raise InvalidImageError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if sr.shape != hr.shape:
        raise InvalidImageError(f"sr and hr must have the same shape, got {tuple(sr.shape)} and {tuple(hr.shape)}")


# ----------------------------------------------------------------------------------------------------------------
# Pixel losses


def pixel_loss(sr: torch.Tensor, hr: torch.Tensor, *, kind: PixelLossKind = "l1", eps: float = 1e-3) -> torch.Tensor:
    """Mean per-pixel distance between two images.

    Args:
        sr: (N, C, H, W) float tensor in [0, 1], the generator output (gradients flow to it).
        hr: the target, same shape.
        kind: ``"l1"`` (mean absolute error), ``"mse"`` (mean squared error, SRResNet's loss) or ``"charbonnier"``
            (``mean(sqrt((sr - hr)^2 + eps^2))``, a differentiable L1 used by LapSRN).
        eps: the Charbonnier smoothing constant, > 0.

    Returns:
        0-d tensor, >= 0 (the Charbonnier loss is >= ``eps``).

    Raises:
        InvalidImageError: the shapes differ.
        ConfigError: unknown ``kind`` or ``eps`` <= 0.
    """
    _check_pair(sr, hr)
    if kind == "l1":
        return F.l1_loss(sr, hr)
    if kind == "mse":
        return F.mse_loss(sr, hr)
    if kind == "charbonnier":
        if not eps > 0:
            raise ConfigError(f"eps must be > 0, got {eps!r}")
        return torch.sqrt((sr - hr).pow(2) + eps * eps).mean()
    raise ConfigError(f"unknown pixel loss kind {kind!r}; expected one of {', '.join(map(repr, _PIXEL_KINDS))}")


class PixelLoss(nn.Module):
    """Module form of :func:`pixel_loss`: ``PixelLoss(kind="mse")(sr, hr)`` -> 0-d tensor."""

    def __init__(self, *, kind: PixelLossKind = "l1", eps: float = 1e-3) -> None:
        super().__init__()
        if kind not in _PIXEL_KINDS:
            raise ConfigError(f"unknown pixel loss kind {kind!r}; expected one of {', '.join(map(repr, _PIXEL_KINDS))}")
        if not eps > 0:
            raise ConfigError(f"eps must be > 0, got {eps!r}")
        self.kind: PixelLossKind = kind
        self.eps = eps

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) pair in [0, 1] -> 0-d loss."""
        return pixel_loss(sr, hr, kind=self.kind, eps=self.eps)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}" + (f", eps={self.eps}" if self.kind == "charbonnier" else "")


# ----------------------------------------------------------------------------------------------------------------
# Perceptual (VGG) loss

# torchvision's VGG19 ``features``: conv channel counts, "M" = 2x2 max-pool. Each conv is followed by a ReLU.
_VGG19_CFG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
)  # fmt: skip
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _vgg19_layer_ends() -> dict[str, int]:
    """Map ``convX_Y`` / ``reluX_Y`` to the length of the ``features`` prefix that ends with that layer."""
    ends: dict[str, int] = {}
    index, block, conv = 0, 1, 0
    for item in _VGG19_CFG:
        if item == "M":
            index += 1
            block, conv = block + 1, 0
            continue
        conv += 1
        ends[f"conv{block}_{conv}"] = index + 1  # features[index] is the Conv2d
        ends[f"relu{block}_{conv}"] = index + 2  # features[index + 1] is its ReLU
        index += 2
    return ends


_VGG19_LAYER_ENDS = _vgg19_layer_ends()


def vgg19_layer_names() -> list[str]:
    """Names accepted by :class:`PerceptualLoss`'s ``layer``: ``conv1_1``, ``relu1_1``, ..., ``relu5_4``.

    ``reluX_Y`` is the activation of the Y-th convolution of block X (between max-pools); ``convX_Y`` is the same
    feature map before the ReLU (ESRGAN's choice). The paper's VGG22 is ``relu2_2`` and VGG54 ``relu5_4``.
    """
    return list(_VGG19_LAYER_ENDS)


def perceptual_loss(
    sr: torch.Tensor,
    hr: torch.Tensor,
    *,
    features: Callable[[torch.Tensor], torch.Tensor],
    rescale: float = 1 / 12.75,
    criterion: Literal["mse", "l1"] = "mse",
) -> torch.Tensor:
    """Distance between feature maps of two images: ``criterion(rescale * features(sr), rescale * features(hr))``.

    The feature extractor holds the state (the VGG network), so :class:`PerceptualLoss` is the usual entry point;
    this function is its computation, usable with any extractor (``PerceptualLoss(...).extract`` for instance).
    No gradient flows to ``hr``: its features are the fixed target.

    Args:
        sr: (N, 3, H, W) float tensor in [0, 1], the generator output (gradients flow to it).
        hr: the target, same shape.
        features: maps (N, 3, H, W) images in [0, 1] to (N, C', H', W') feature maps.
        rescale: factor applied to the feature maps before the distance; SRGAN uses 1/12.75.
        criterion: ``"mse"`` (SRGAN) or ``"l1"`` (ESRGAN).

    Returns:
        0-d tensor, >= 0; 0 for identical inputs.

    Raises:
        InvalidImageError: the shapes differ.
        ConfigError: unknown ``criterion``.
    """
    _check_pair(sr, hr)
    if criterion not in _CRITERIA:
        raise ConfigError(f"unknown criterion {criterion!r}; expected one of {', '.join(map(repr, _CRITERIA))}")
    fake = features(sr) * rescale
    with torch.no_grad():
        real = features(hr) * rescale
    return F.mse_loss(fake, real) if criterion == "mse" else F.l1_loss(fake, real)


class PerceptualLoss(nn.Module):
    """SRGAN's VGG loss: distance between frozen VGG19 feature maps of the output and the target.

    The VGG19 of torchvision is truncated after ``layer``, frozen (``requires_grad=False``) and kept in eval mode
    (``.train()`` does not change that). Inputs are normalised with the ImageNet mean and std internally.

    Args:
        layer: feature map to compare (see :func:`vgg19_layer_names`): ``"relu5_4"`` is the paper's VGG54 (the
            activation of the 4th convolution before the 5th max-pool), ``"relu2_2"`` its VGG22.
        weights: VGG19 weights, passed to ``torchvision.models.vgg19`` (which downloads and caches them):
            a ``VGG19_Weights`` value, its name (``"IMAGENET1K_V1"``, ``"DEFAULT"``) or ``None`` for random
            features (meaningful only in tests; a warning is logged).
        rescale: factor applied to the feature maps before the distance; 1/12.75 makes the loss comparable to
            the pixel MSE (paper, section 2.2.2).
        criterion: ``"mse"`` (SRGAN) or ``"l1"``.
        progress: show a progress bar while downloading the weights.

    Raises:
        ConfigError: unknown ``layer``, ``weights`` or ``criterion``.

    Example:
        >>> loss = PerceptualLoss(layer="relu5_4")  # doctest: +SKIP
        >>> loss(sr, hr)  # (N, 3, H, W) in [0, 1] -> 0-d tensor  # doctest: +SKIP
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        *,
        layer: str = "relu5_4",
        weights: str | VGG19_Weights | None = VGG19_Weights.IMAGENET1K_V1,
        rescale: float = 1 / 12.75,
        criterion: Literal["mse", "l1"] = "mse",
        progress: bool = False,
    ) -> None:
        super().__init__()
        if layer not in _VGG19_LAYER_ENDS:
            raise ConfigError(
                f"unknown VGG19 layer {layer!r}; expected 'reluX_Y' or 'convX_Y' such as 'relu5_4' (VGG54) or "
                f"'relu2_2' (VGG22); see srgan.losses.vgg19_layer_names()"
            )
        if criterion not in _CRITERIA:
            raise ConfigError(f"unknown criterion {criterion!r}; expected one of {', '.join(map(repr, _CRITERIA))}")
        try:
            resolved: Any = VGG19_Weights.verify(weights)
        except (KeyError, TypeError, ValueError) as err:
            names = ", ".join(repr(w.name) for w in VGG19_Weights)
            raise ConfigError(
                f"unknown VGG19 weights {weights!r}; expected a torchvision VGG19_Weights, one of {names}, "
                "'DEFAULT' or None"
            ) from err
        if resolved is None:
            logger.warning(
                "PerceptualLoss built with weights=None: the VGG19 features are random, so the loss is "
                "meaningful only for tests"
            )
        end = _VGG19_LAYER_ENDS[layer]
        vgg = vgg19(weights=resolved, progress=progress)
        self.features = nn.Sequential(*list(vgg.features.children())[:end])
        expected = nn.ReLU if layer.startswith("relu") else nn.Conv2d
        if len(self.features) != end or not isinstance(self.features[-1], expected):  # torchvision changed VGG
            raise SRGANError(f"torchvision's vgg19().features does not end with a {expected.__name__} at {layer}")
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.layer = layer
        self.weights_name: str | None = None if resolved is None else str(resolved.name)
        self.rescale = rescale
        self.criterion: Literal["mse", "l1"] = criterion
        super().train(False)

    def train(self: _M, mode: bool = True) -> _M:
        """Stay in eval mode whatever ``mode`` says: the VGG is a fixed feature extractor."""
        return super().train(False)

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        """VGG19 feature map at ``layer`` (not rescaled): (N, 3, H, W) in [0, 1] -> (N, C', H / 2^k, W / 2^k)."""
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise InvalidImageError(f"expected an (N, 3, H, W) RGB tensor in [0, 1], got {shape}")
        out: torch.Tensor = self.features((x - self.mean) / self.std)
        return out

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) pair in [0, 1] -> 0-d loss; gradients flow to ``sr`` only."""
        return perceptual_loss(sr, hr, features=self.extract, rescale=self.rescale, criterion=self.criterion)

    def extra_repr(self) -> str:
        return (
            f"layer={self.layer!r}, weights={self.weights_name!r}, rescale={self.rescale:.6g}, "
            f"criterion={self.criterion!r}"
        )


# ----------------------------------------------------------------------------------------------------------------
# Adversarial losses (on raw discriminator logits)


def _bce(logits: torch.Tensor, target_is_real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if target_is_real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def bce_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """SRGAN's adversarial loss ``-log D(G(lr))`` (the non-saturating GAN loss), from logits.

    Args:
        fake_logits: discriminator logits on the generator output, any shape (N,) or (N, 1).

    Returns:
        0-d tensor, ``mean(softplus(-fake_logits))``; log 2 at logits 0.
    """
    return _bce(fake_logits, True)


def bce_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator loss ``-(log D(hr) + log(1 - D(G(lr)))) / 2``, from logits.

    The mean of the real and fake terms (half the textbook sum), like the relativistic loss below.

    Args:
        real_logits: discriminator logits on ground-truth images, any shape.
        fake_logits: discriminator logits on generator outputs (usually detached from the generator), any shape.

    Returns:
        0-d tensor; log 2 when both logits are 0, decreasing as ``real_logits`` grow and ``fake_logits`` fall.
    """
    return 0.5 * (_bce(real_logits, True) + _bce(fake_logits, False))


def relativistic_generator_loss(fake_logits: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """ESRGAN's relativistic average generator loss, from logits.

    ``(BCE(real - mean(fake), 0) + BCE(fake - mean(real), 1)) / 2``: the generator is rewarded when its outputs
    look more real than the average ground truth. ``real_logits`` is detached (no gradient to the discriminator).

    Args:
        fake_logits: discriminator logits on generator outputs, any shape.
        real_logits: discriminator logits on ground-truth images, any shape.

    Returns:
        0-d tensor; log 2 when all logits are equal.
    """
    real = real_logits.detach()
    return 0.5 * (_bce(real - fake_logits.mean(), False) + _bce(fake_logits - real.mean(), True))


def relativistic_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """ESRGAN's relativistic average discriminator loss, from logits.

    ``(BCE(real - mean(fake), 1) + BCE(fake - mean(real), 0)) / 2``.

    Args:
        real_logits: discriminator logits on ground-truth images, any shape.
        fake_logits: discriminator logits on generator outputs (usually detached from the generator), any shape.

    Returns:
        0-d tensor; log 2 when all logits are equal, decreasing as ``real_logits`` grow above ``fake_logits``.
    """
    return 0.5 * (_bce(real_logits - fake_logits.mean(), True) + _bce(fake_logits - real_logits.mean(), False))


class AdversarialLoss(nn.Module):
    """GAN losses on discriminator logits: SRGAN's ``"bce"`` or ESRGAN's ``"relativistic"`` average GAN.

    ``forward`` is :meth:`generator_loss`, the adversarial term of the generator's loss (SRGAN's ``l_Gen``).

    Args:
        kind: ``"bce"`` (binary cross-entropy, the paper) or ``"relativistic"`` (RaGAN, ESRGAN).

    Raises:
        ConfigError: unknown ``kind``.
    """

    def __init__(self, *, kind: AdversarialKind = "bce") -> None:
        super().__init__()
        if kind not in _ADVERSARIAL_KINDS:
            raise ConfigError(
                f"unknown adversarial loss kind {kind!r}; expected one of {', '.join(map(repr, _ADVERSARIAL_KINDS))}"
            )
        self.kind: AdversarialKind = kind

    def generator_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        """Generator loss from logits (any shape) -> 0-d tensor; ``real_logits`` is required for "relativistic"."""
        if self.kind == "bce":
            return bce_generator_loss(fake_logits)
        if real_logits is None:
            raise ConfigError(
                "the relativistic generator loss needs real_logits (the discriminator's logits on the HR batch)"
            )
        return relativistic_generator_loss(fake_logits, real_logits)

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """Discriminator loss from logits on HR images and on (detached) generator outputs -> 0-d tensor."""
        if self.kind == "bce":
            return bce_discriminator_loss(real_logits, fake_logits)
        return relativistic_discriminator_loss(real_logits, fake_logits)

    def forward(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        """Same as :meth:`generator_loss`."""
        return self.generator_loss(fake_logits, real_logits)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"


def feature_matching_loss(fake_features: list[torch.Tensor], real_features: list[torch.Tensor]) -> torch.Tensor:
    """Discriminator feature matching for paired SR training: the mean over layers of the L1 distance per layer.

    ``mean_l |D_l(SR) - D_l(HR)|``, with ``D_l`` the discriminator's activations after its ``l``-th stage (see
    :meth:`srgan.models.Discriminator.forward_features`). The HR features are detached: only the generator is
    pulled towards the discriminator's view of the ground truth. A learned perceptual loss that needs no
    pretrained network.

    Args:
        fake_features: activations for the generator outputs, one (N, C_l, H_l, W_l) tensor per layer.
        real_features: the same layers for the matching HR images (same shapes).

    Returns:
        0-d float32 tensor; 0 when the features are equal.

    Raises:
        InvalidImageError: the lists differ in length, are empty, or a pair differs in shape.
    """
    if not fake_features or len(fake_features) != len(real_features):
        raise InvalidImageError(
            f"feature matching needs two equally long, non-empty lists of layer activations; got "
            f"{len(fake_features)} and {len(real_features)} layers"
        )
    total = fake_features[0].new_zeros((), dtype=torch.float32)
    for i, (f, r) in enumerate(zip(fake_features, real_features, strict=True)):
        if f.shape != r.shape:
            raise InvalidImageError(
                f"feature matching layer {i}: SR features {tuple(f.shape)} and HR features {tuple(r.shape)} differ; "
                "pass the discriminator's features for SR and HR batches of the same size"
            )
        total = total + F.l1_loss(f.float(), r.detach().float())
    return total / len(fake_features)
