import pytest
import torch

from srgan._tiling import Tile, band_rows, plan_padded_tiles, plan_tiles, receptive_radius
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


@pytest.mark.parametrize(
    ("h", "w", "side", "pad"), [(1024, 1024, 396, 40), (2048, 700, 396, 40), (50, 30, 20, 3), (7, 9, 3, 1)]
)
def test_padded_plan_covers_once_within_the_side(h: int, w: int, side: int, pad: int) -> None:
    tiles = list(plan_padded_tiles(h, w, side=side, pad=pad))
    seen = torch.zeros(h, w, dtype=torch.int32)
    for t in tiles:
        seen[t.y0 : t.y1, t.x0 : t.x1] += 1
        assert (t.py0, t.py1, t.px0, t.px1) == (
            max(0, t.y0 - pad),
            min(h, t.y1 + pad),
            max(0, t.x0 - pad),
            min(w, t.x1 + pad),
        )
        assert t.py1 - t.py0 <= side and t.px1 - t.px0 <= side
    assert bool((seen == 1).all())


def test_padded_plan_uses_fewer_tiles_than_equal_cores() -> None:
    # At 1024 px with a 396 px padded side and 40 px of context: border cores of 356, so 3 tiles a side, not 4.
    padded = list(plan_padded_tiles(1024, 1024, side=396, pad=40))
    equal = list(plan_tiles(1024, 1024, tile=396 - 80, pad=40))
    assert len(padded) == 9 < len(equal) == 16
    work = sum((t.py1 - t.py0) * (t.px1 - t.px0) for t in padded)
    assert work < sum((t.py1 - t.py0) * (t.px1 - t.px0) for t in equal)
    assert list(plan_padded_tiles(300, 200, side=300, pad=40)) == [Tile(0, 300, 0, 200, 0, 300, 0, 200)]
    with pytest.raises(ConfigError):
        list(plan_padded_tiles(500, 500, side=80, pad=40))


@pytest.mark.parametrize(("budget", "radius"), [(1e9, 3), (4000.0, 3), (2500.0, 1), (1.0, 2)])
def test_bands_cover_the_core_once_within_the_tile_and_budget(budget: float, radius: int) -> None:
    h, w = 90, 70
    for t in plan_padded_tiles(h, w, side=50, pad=5):
        seen = torch.zeros(h, w, dtype=torch.int32)
        bands = list(band_rows(t, h, w, budget=budget, bytes_per_px=1.0, radius=radius))
        for b in bands:
            seen[b.y0 : b.y1, b.x0 : b.x1] += 1
            assert (b.x0, b.x1) == (t.x0, t.x1)  # whole rows of the core
            assert (b.py0, b.py1, b.px0, b.px1) == (
                max(0, b.y0 - radius),
                min(h, b.y1 + radius),
                max(0, b.x0 - radius),
                min(w, b.x1 + radius),
            )
            assert t.py0 <= b.py0 and b.py1 <= t.py1 and t.px0 <= b.px0 and b.px1 <= t.px1  # inside the tile
            big_enough = (b.py1 - b.py0) * (b.px1 - b.px0) <= budget
            assert big_enough or b.y1 - b.y0 <= 16  # within the budget, or the 16-row floor
        assert bool((seen[t.y0 : t.y1, t.x0 : t.x1] == 1).all()) and int(seen.sum()) == (t.y1 - t.y0) * (t.x1 - t.x0)
        if budget >= 1e9:
            assert len(bands) == 1
    with pytest.raises(ConfigError):
        list(band_rows(Tile(0, 4, 0, 4, 0, 4, 0, 4), 4, 4, budget=1.0, bytes_per_px=0.0, radius=1))
