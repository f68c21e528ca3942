import torch

from srgan._fuse import fold_batchnorm
from srgan.models import Generator


def test_folded_generator_matches_and_has_no_batchnorm() -> None:
    g = Generator(num_blocks=3, channels=16).eval()
    with torch.no_grad():
        for m in g.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.2, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    folded = fold_batchnorm(g)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.rand(2, 3, 17, 13)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), g(x), atol=1e-5, rtol=0)
    # the original is untouched
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in g.modules()) == 7
