import torch

from srgan import SRGAN, Generator
from srgan._scheduler import CPU_MEMORY_BOUND, CPU_TILE_BUDGET, auto_side, tile_budget
from srgan._tiling import receptive_radius

CPU = torch.device("cpu")


def test_cpu_budget_leaves_room_for_the_output_under_the_bound() -> None:
    assert tile_budget(CPU) == CPU_TILE_BUDGET  # small outputs: the full per-tile budget
    # A 4000x3000 input at x4 as a PIL image: 4 bytes per output pixel, plus the float32 input.
    reserved = 4 * 16000 * 12000 + 4 * 3 * 4000 * 3000
    budget = tile_budget(CPU, reserved=reserved)
    assert budget < CPU_TILE_BUDGET
    assert budget + reserved <= CPU_MEMORY_BOUND - 700 * 2**20  # leaves the process its measured ~730 MiB
    # The budget shrinks as the output grows, never below a floor that keeps tiles worth running.
    budgets = [tile_budget(CPU, reserved=r * 2**30) for r in (0.5, 1.0, 1.5, 4.0, 40.0)]
    assert budgets == sorted(budgets, reverse=True)
    assert budgets[-1] == budgets[-2] == 2**28


def test_huge_outputs_get_smaller_tiles_that_fit_the_budget() -> None:
    model = SRGAN(Generator(), device="cpu", dtype="fp32")
    per_px = model._bytes_per_px()  # of what runs on whole tiles (the trunk)
    reserved = 4 * 16000 * 12000 + 4 * 3 * 4000 * 3000
    small = model._auto_side(3000, 4000, CPU)
    big = model._auto_side(3000, 4000, CPU, reserved=reserved)
    assert big < small
    assert big**2 * per_px <= tile_budget(CPU, reserved=reserved)
    assert big > 2 * receptive_radius(model.generator.config) + 64  # cores stay worth running


def test_auto_side_bounds_the_padded_tile() -> None:
    assert auto_side(300, 200, budget=2**30, bytes_per_px=10240, radius=40) == 300  # whole image when it fits
    side = auto_side(1024, 1024, budget=3 * 2**29, bytes_per_px=10240, radius=40)
    assert side == 396 and side**2 * 10240 <= 3 * 2**29
    assert auto_side(9000, 9000, budget=1, bytes_per_px=10240, radius=40) == 144  # a core of at least 64
    batched = auto_side(5000, 5000, budget=2**30, bytes_per_px=10240, radius=40, batch=3)
    assert batched**2 * 10240 * 3 <= 2**30 < (batched + 1) ** 2 * 10240 * 3  # a batch shares the budget
