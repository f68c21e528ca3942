import pytest
import torch

from srgan.errors import ConfigError
from srgan.models import Discriminator


@pytest.mark.parametrize("size", [16, 48, 96, 128])
def test_returns_one_logit_per_image_for_any_crop(size: int) -> None:
    d = Discriminator(channels=8)
    out = d(torch.rand(3, 3, size, size))
    assert out.shape == (3,)
    assert out.dtype == torch.float32


def test_paper_layout() -> None:
    d = Discriminator()
    convs = [m for m in d.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
    bns = [m for m in d.features if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 7  # all but the first conv
    acts = [m for m in d.features if isinstance(m, torch.nn.LeakyReLU)]
    assert all(a.negative_slope == 0.2 for a in acts)
    linears = [m for m in d.classifier if isinstance(m, torch.nn.Linear)]
    assert [lin.out_features for lin in linears] == [1024, 1]


def test_logits_are_unbounded() -> None:
    d = Discriminator(channels=4)
    with torch.no_grad():
        d.classifier[-1].bias.fill_(10.0)
    assert d(torch.rand(1, 3, 32, 32)).item() > 1.0  # not a probability


def test_invalid_arguments() -> None:
    with pytest.raises(ConfigError):
        Discriminator(channels=0)


def test_forward_features_matches_forward_and_keeps_each_stage() -> None:
    torch.manual_seed(0)
    d = Discriminator(channels=4).eval()
    x = torch.rand(2, 3, 32, 32)
    logits, feats = d.forward_features(x)
    torch.testing.assert_close(logits, d(x))
    assert [f.shape[1] for f in feats] == [4, 4, 8, 8, 16, 16, 32, 32]
    assert [f.shape[-1] for f in feats] == [32, 16, 16, 8, 8, 4, 4, 2]
    # Each stored stage equals a recomputation up to that point (later in-place ops did not overwrite it).
    h = x
    for layer in d.features:
        h = layer(h.clone())
        if isinstance(layer, torch.nn.LeakyReLU):
            torch.testing.assert_close(feats.pop(0), h)
    assert not feats
