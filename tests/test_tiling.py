import pytest
import torch

from srgan._tiling import plan_tiles, receptive_radius
from srgan.errors import ConfigError
from srgan.models import Generator, GeneratorConfig


@pytest.mark.parametrize("h,w,tile", [(10, 10, 4), (17, 5, 8), (8, 8, 100), (1, 1, 1)])
def test_cores_cover_the_image_exactly_once(h: int, w: int, tile: int) -> None:
    seen = torch.zeros(h, w, dtype=torch.int32)
    for t in plan_tiles(h, w, tile=tile, pad=3):
        seen[t.y0 : t.y1, t.x0 : t.x1] += 1
        assert t.y1 - t.y0 <= tile and t.x1 - t.x0 <= tile
        assert 0 <= t.py0 <= t.y0 and t.y1 <= t.py1 <= h
    assert torch.all(seen == 1)


def test_invalid_tile() -> None:
    with pytest.raises(ConfigError):
        list(plan_tiles(4, 4, tile=0, pad=1))


def test_receptive_radius_is_an_upper_bound() -> None:
    """Changing one input pixel must not change outputs farther than the radius (in input pixels)."""
    torch.manual_seed(0)
    g = Generator(scale=4, num_blocks=2, channels=4).eval()
    r = receptive_radius(g.config)
    x = torch.rand(1, 3, 40, 40, dtype=torch.float64)
    g = g.double()
    with torch.no_grad():
        a = g(x)
        x2 = x.clone()
        x2[..., 20, 20] += 1.0
        b = g(x2)
    changed = (a - b).abs().sum(1)[0] > 0
    ys, xs = torch.nonzero(changed, as_tuple=True)
    reach = max((ys // 4 - 20).abs().max().item(), (xs // 4 - 20).abs().max().item())
    assert reach <= r
    assert reach >= r - 2  # and it is tight


def test_radius_grows_with_depth() -> None:
    assert receptive_radius(GeneratorConfig(num_blocks=16)) > receptive_radius(GeneratorConfig(num_blocks=2))
