"""Tests for srgan.losses: pixel, perceptual (random VGG19, no download) and adversarial losses."""

from __future__ import annotations

import logging
import math
import random

import numpy as np
import pytest
import torch
from torch import nn

from srgan.errors import ConfigError, InvalidImageError
from srgan.losses import (
    AdversarialLoss,
    PerceptualLoss,
    PixelLoss,
    bce_discriminator_loss,
    bce_generator_loss,
    feature_matching_loss,
    perceptual_loss,
    pixel_loss,
    relativistic_discriminator_loss,
    relativistic_generator_loss,
    vgg19_layer_names,
)

LOG2 = math.log(2.0)


@pytest.fixture(autouse=True)
def _seed() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


# ---------------------------------------------------------------------------------------------------------------
# Pixel losses


def test_pixel_loss_known_values() -> None:
    hr = torch.zeros(2, 3, 4, 4)
    sr = torch.full_like(hr, 0.5)
    assert pixel_loss(sr, hr, kind="l1").item() == pytest.approx(0.5)
    assert pixel_loss(sr, hr, kind="mse").item() == pytest.approx(0.25)
    assert pixel_loss(sr, hr, kind="charbonnier", eps=1e-3).item() == pytest.approx(math.sqrt(0.25 + 1e-6))
    assert pixel_loss(hr, hr, kind="charbonnier", eps=1e-3).item() == pytest.approx(1e-3)


@pytest.mark.parametrize("kind", ["l1", "mse", "charbonnier"])
def test_pixel_module_delegates_and_backpropagates(kind: str) -> None:
    hr = torch.rand(2, 3, 8, 8)
    sr = torch.rand(2, 3, 8, 8, requires_grad=True)
    loss = PixelLoss(kind=kind)(sr, hr)  # type: ignore[arg-type]
    assert loss.ndim == 0
    torch.testing.assert_close(loss, pixel_loss(sr, hr, kind=kind))  # type: ignore[arg-type]
    loss.backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0


def test_pixel_loss_errors() -> None:
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ConfigError, match="'huber'"):
        pixel_loss(x, x, kind="huber")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'huber'"):
        PixelLoss(kind="huber")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="eps"):
        PixelLoss(kind="charbonnier", eps=0.0)
    with pytest.raises(InvalidImageError, match=r"\(1, 3, 8, 8\).*\(1, 3, 4, 4\)"):
        pixel_loss(x, torch.rand(1, 3, 4, 4))


# ---------------------------------------------------------------------------------------------------------------
# Perceptual loss (weights=None: random features, nothing downloaded)


@pytest.fixture(scope="module")
def vgg54() -> PerceptualLoss:
    return PerceptualLoss(layer="relu5_4", weights=None)


def test_layer_names_map_to_vgg19_depth(vgg54: PerceptualLoss, caplog: pytest.LogCaptureFixture) -> None:
    assert len(vgg54.features) == 36  # features[:36]
    assert isinstance(vgg54.features[-1], nn.ReLU)
    assert vgg54.extract(torch.rand(1, 3, 32, 32)).shape == (1, 512, 2, 2)
    with caplog.at_level(logging.WARNING, logger="srgan.losses"):
        vgg22 = PerceptualLoss(layer="relu2_2", weights=None)
    assert "random" in caplog.text  # weights=None is only for tests
    assert len(vgg22.features) == 9  # features[:9]
    assert isinstance(vgg22.features[-1], nn.ReLU)
    assert vgg22.extract(torch.rand(1, 3, 32, 32)).shape == (1, 128, 16, 16)


def test_layer_table_agrees_with_torchvision(vgg54: PerceptualLoss) -> None:
    walked = []
    block, conv = 1, 0
    for module in vgg54.features:
        if isinstance(module, nn.MaxPool2d):
            block, conv = block + 1, 0
        elif isinstance(module, nn.Conv2d):
            conv += 1
            walked.append(f"conv{block}_{conv}")
        elif isinstance(module, nn.ReLU):
            walked.append(f"relu{block}_{conv}")
    assert walked == vgg19_layer_names()
    assert len(walked) == 32 and walked[-1] == "relu5_4"


def test_perceptual_scalar_zero_for_identical(vgg54: PerceptualLoss) -> None:
    x = torch.rand(2, 3, 32, 32)
    same = vgg54(x, x.clone())
    assert same.ndim == 0
    assert same.item() == 0.0
    assert vgg54(torch.rand(2, 3, 32, 32), x).item() > 0


def test_perceptual_rescale_and_function_form(vgg54: PerceptualLoss) -> None:
    sr, hr = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    plain = perceptual_loss(sr, hr, features=vgg54.extract, rescale=1.0)
    expected = nn.functional.mse_loss(vgg54.extract(sr), vgg54.extract(hr))
    torch.testing.assert_close(plain, expected)
    torch.testing.assert_close(vgg54(sr, hr), plain / 12.75**2)
    l1 = perceptual_loss(sr, hr, features=vgg54.extract, criterion="l1")
    torch.testing.assert_close(l1, nn.functional.l1_loss(vgg54.extract(sr), vgg54.extract(hr)) / 12.75)


def test_perceptual_gradient_reaches_input_not_vgg(vgg54: PerceptualLoss) -> None:
    sr = torch.rand(1, 3, 32, 32, requires_grad=True)
    hr = torch.rand(1, 3, 32, 32, requires_grad=True)
    vgg54(sr, hr).backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert hr.grad is None  # the target's features are fixed
    assert all(not p.requires_grad and p.grad is None for p in vgg54.parameters())


def test_perceptual_stays_in_eval(vgg54: PerceptualLoss) -> None:
    assert not vgg54.training
    wrapper = nn.ModuleDict({"loss": vgg54, "head": nn.Linear(2, 2)})
    wrapper.train()
    assert wrapper["head"].training
    assert not vgg54.training
    assert all(not m.training for m in vgg54.modules())
    assert vgg54.train() is vgg54


def test_perceptual_buffers_are_not_persistent(vgg54: PerceptualLoss) -> None:
    buffers = dict(vgg54.named_buffers())
    torch.testing.assert_close(buffers["mean"].flatten(), torch.tensor([0.485, 0.456, 0.406]))
    torch.testing.assert_close(buffers["std"].flatten(), torch.tensor([0.229, 0.224, 0.225]))
    assert not any(key in ("mean", "std") for key in vgg54.state_dict())


def test_perceptual_config_errors() -> None:
    with pytest.raises(ConfigError, match="relu6_1"):
        PerceptualLoss(layer="relu6_1", weights=None)
    with pytest.raises(ConfigError, match="criterion"):
        PerceptualLoss(weights=None, criterion="huber")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="IMAGENET1K_V1"):
        PerceptualLoss(weights="NOT_A_WEIGHT")


def test_perceptual_rejects_bad_input(vgg54: PerceptualLoss) -> None:
    with pytest.raises(InvalidImageError, match="3"):
        vgg54(torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32))
    with pytest.raises(InvalidImageError, match="same shape"):
        vgg54(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 16, 16))


# ---------------------------------------------------------------------------------------------------------------
# Adversarial losses


def test_bce_losses_at_zero_logits_equal_log2() -> None:
    zeros = torch.zeros(8, 1)
    assert bce_generator_loss(zeros).item() == pytest.approx(LOG2)
    assert bce_discriminator_loss(zeros, zeros).item() == pytest.approx(LOG2)


def test_relativistic_losses_at_equal_logits_equal_log2() -> None:
    logits = torch.full((8,), 3.7)
    assert relativistic_generator_loss(logits, logits.clone()).item() == pytest.approx(LOG2)
    assert relativistic_discriminator_loss(logits, logits.clone()).item() == pytest.approx(LOG2)


def test_bce_known_values() -> None:
    real, fake = torch.tensor([2.0]), torch.tensor([-1.0])
    expected_d = 0.5 * (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(-1.0)))
    assert bce_discriminator_loss(real, fake).item() == pytest.approx(expected_d)
    assert bce_generator_loss(fake).item() == pytest.approx(math.log1p(math.exp(1.0)))


def test_relativistic_known_values() -> None:
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, -2.0])  # mean real 2, mean fake -1

    def softplus(v: float) -> float:
        return math.log1p(math.exp(v))

    # D: BCE(real + 1, 1) and BCE(fake - 2, 0); G: BCE(real + 1, 0) and BCE(fake - 2, 1)
    d = 0.5 * (np.mean([softplus(-2.0), softplus(-4.0)]) + np.mean([softplus(-2.0), softplus(-4.0)]))
    g = 0.5 * (np.mean([softplus(2.0), softplus(4.0)]) + np.mean([softplus(2.0), softplus(4.0)]))
    assert relativistic_discriminator_loss(real, fake).item() == pytest.approx(d)
    assert relativistic_generator_loss(fake, real).item() == pytest.approx(g)


@pytest.mark.parametrize("kind", ["bce", "relativistic"])
def test_discriminator_loss_falls_as_real_logits_grow(kind: str) -> None:
    adv = AdversarialLoss(kind=kind)  # type: ignore[arg-type]
    fake = torch.zeros(4)
    losses = [adv.discriminator_loss(torch.full((4,), r), fake).item() for r in (-2.0, 0.0, 2.0, 5.0)]
    assert losses == sorted(losses, reverse=True) and losses[0] > losses[-1]
    gen = [adv.generator_loss(torch.full((4,), f), torch.zeros(4)).item() for f in (-2.0, 0.0, 2.0)]
    assert gen == sorted(gen, reverse=True)


def test_losses_are_stable_for_huge_logits() -> None:
    big = torch.tensor([1e4, -1e4])
    for value in (
        bce_generator_loss(big),
        bce_discriminator_loss(big, -big),
        relativistic_generator_loss(big, -big),
        relativistic_discriminator_loss(big, -big),
    ):
        assert torch.isfinite(value)


def test_adversarial_module_delegates() -> None:
    real, fake = torch.randn(6, 1), torch.randn(6, 1, requires_grad=True)
    bce, ra = AdversarialLoss(kind="bce"), AdversarialLoss(kind="relativistic")
    torch.testing.assert_close(bce(fake), bce_generator_loss(fake))
    torch.testing.assert_close(bce.discriminator_loss(real, fake), bce_discriminator_loss(real, fake))
    torch.testing.assert_close(ra(fake, real), relativistic_generator_loss(fake, real))
    torch.testing.assert_close(ra.discriminator_loss(real, fake), relativistic_discriminator_loss(real, fake))
    real_d = torch.randn(6, 1, requires_grad=True)
    loss = ra.generator_loss(fake, real_d)
    loss.backward()  # type: ignore[no-untyped-call]
    assert fake.grad is not None and real_d.grad is None  # the generator loss never trains D


def test_adversarial_errors() -> None:
    with pytest.raises(ConfigError, match="'wgan'"):
        AdversarialLoss(kind="wgan")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="real_logits"):
        AdversarialLoss(kind="relativistic").generator_loss(torch.zeros(2))


def test_feature_matching_loss_known_answer_and_detached_target() -> None:
    fake = [torch.zeros(2, 3, 4, 4, requires_grad=True), torch.zeros(2, 5, 2, 2, requires_grad=True)]
    real = [torch.full((2, 3, 4, 4), 1.0, requires_grad=True), torch.full((2, 5, 2, 2), 3.0, requires_grad=True)]
    loss = feature_matching_loss(fake, real)
    assert loss.item() == pytest.approx((1.0 + 3.0) / 2)
    loss.backward()
    assert fake[0].grad is not None and real[0].grad is None  # only the generator side is pulled
    assert feature_matching_loss(real, real).item() == 0.0


def test_feature_matching_loss_rejects_mismatched_layers() -> None:
    with pytest.raises(InvalidImageError, match="equally long"):
        feature_matching_loss([torch.zeros(1, 1, 2, 2)], [])
    with pytest.raises(InvalidImageError, match="layer 0"):
        feature_matching_loss([torch.zeros(1, 1, 2, 2)], [torch.zeros(1, 1, 4, 4)])
