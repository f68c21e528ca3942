"""Tests for srgan.training.distributed and distributed training: 2 CPU processes with gloo on a tiny model.

The equivalence tests use ``sync_batchnorm=True``: with plain BatchNorm each rank normalises its own half of the
global batch, which is a different computation from a single process normalising the whole batch (the gradients
are still averaged and the ranks stay identical, but the numbers differ from a one-process run). With the batch
statistics synchronised, two ranks with two images each compute what one process computes with four.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import srgan.training.trainer as trainer_module
from srgan.errors import ConfigError
from srgan.models import Discriminator, Generator
from srgan.training import TrainConfig, Trainer
from srgan.training.distributed import DistributedContext, convert_sync_batchnorm, setup
from srgan.training.trainer import STATE_NAME

from .test_trainer import tiny_config as trainer_tiny_config

State = dict[str, torch.Tensor]
WORLD = 2


def tiny_config(**overrides: Any) -> TrainConfig:
    """The trainer tests' tiny config with a global batch of 4 (2 per rank) and synchronised BatchNorm."""
    base: dict[str, Any] = dict(batch_size=4, pretrain_steps=3, gan_steps=1, sync_batchnorm=True)
    base.update(overrides)
    return trainer_tiny_config(**base)


def small_discriminator() -> Discriminator:
    return Discriminator(channels=4, hidden=16)


@pytest.fixture(autouse=True)
def _small_discriminator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trainer_module, "Discriminator", small_discriminator)


def free_ports(n: int) -> list[int]:
    """``n`` different free TCP ports on 127.0.0.1."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _train_rank(rank: int, runs: list[tuple[int, str, str]], train_dir: str, result_dir: str) -> None:
    """One rank, started as torchrun would: the Trainer finds its place in the environment.

    ``runs``: ``(port, config JSON, output folder)`` of each run, one after the other (a process group each).
    """
    torch.set_num_threads(1)
    trainer_module.Discriminator = small_discriminator  # type: ignore[misc]  # a fresh process: patch again
    for i, (port, config_json, out_dir) in enumerate(runs):
        os.environ.update(
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE=str(WORLD),
            LOCAL_WORLD_SIZE=str(WORLD),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
        )
        tr = Trainer(
            TrainConfig.from_json(config_json), train_dirs=[train_dir], output_dir=out_dir, device="cpu", progress=False
        )
        assert (tr.dist.rank, tr.dist.world_size, tr.batch_per_rank) == (rank, WORLD, 2)
        assert isinstance(tr._g, torch.nn.parallel.DistributedDataParallel)
        tr.fit()
        assert not dist.is_initialized(), "fit() destroys the process group the Trainer created"
        # The weights, and the (all-reduced) gradients of the last step, which fit() leaves in place.
        states = {net: getattr(tr, net).state_dict() for net in ("generator", "discriminator")}
        states.update({f"{net}_grad": grads(getattr(tr, net)) for net in ("generator", "discriminator")})
        torch.save(states, Path(result_dir) / f"run{i}_rank{rank}.pt")


def grads(model: torch.nn.Module) -> State:
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def run_ranks(fn: Callable[..., None], *args: Any, timeout: float = 120) -> None:
    """Run ``fn(rank, *args)`` in WORLD spawned processes; fail (and stop them) on error or timeout."""
    ctx = mp.start_processes(fn, args=args, nprocs=WORLD, join=False, start_method="spawn")
    deadline = time.monotonic() + timeout
    while not ctx.join(timeout=1):  # raises ProcessRaisedException (with the traceback) if a rank failed
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.terminate()
            pytest.fail(f"the distributed run did not finish in {timeout} s")


def single_process(config: TrainConfig, train_dir: Path, out: Path, **kw: Any) -> Trainer:
    tr = Trainer(config, train_dirs=[train_dir], output_dir=out, device="cpu", progress=False, **kw)
    assert not tr.dist.enabled and tr._g is tr.generator
    tr.fit()
    return tr


def noise_driven(model: torch.nn.Module) -> set[str]:
    """The biases of convolutions that feed a BatchNorm, and that BatchNorm's running mean.

    BatchNorm subtracts the batch mean, so these biases get a zero gradient in exact arithmetic: what they get is
    rounding noise, which Adam (dividing by the gradient's magnitude) turns into steps of about ``lr`` and random
    sign. In training mode the output does not depend on them at all.
    """
    named = list(model.named_modules())
    out = set()
    for (conv_name, conv), (bn_name, bn) in itertools.pairwise(named):
        if isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d) and conv.bias is not None:
            out |= {f"{conv_name}.bias", f"{bn_name}.running_mean"}
    return out


def assert_same_training(a: State, b: State, net: str, *, lr: float, steps: int) -> None:
    """``a`` and ``b`` are the same run up to rounding: every value within 1e-5, except where Adam amplifies noise.

    Two correct runs that round differently (one process, or two with all-reduced gradients) agree to ~1e-7 in
    every gradient. Adam's step, ``lr * m / (sqrt(v) + eps)``, is about ``lr * g / |g|`` in the first steps: where
    a gradient element is itself at the noise level, the rounding decides its step, up to ``2 * lr`` apart. That
    is always so for the :func:`noise_driven` values (skipped), and happens by chance for a rare element elsewhere
    (allowed for at most 0.1% of a tensor, bounded by ``2 * lr * steps``). A wrong gradient moves many elements.
    """
    assert a.keys() == b.keys()
    model = Generator(num_blocks=1, channels=8) if net == "generator" else small_discriminator()
    for k in a.keys() - noise_driven(model):
        if not a[k].is_floating_point():
            assert torch.equal(a[k], b[k]), k
            continue
        diff = (a[k] - b[k]).abs()
        outliers = diff > 1e-5
        assert outliers.float().mean() <= 1e-3, f"{net}.{k}: {int(outliers.sum())} of {diff.numel()} elements differ"
        assert diff.max() <= 2 * lr * steps, f"{net}.{k}: differs by {diff.max():.2e}"


def read_metrics(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------------------------------------------------------
# Two processes against one


def test_two_ranks_train_like_one_process_with_the_global_batch(tiny_image_dir: Path, tmp_path: Path) -> None:
    """3 pretrain steps and a GAN step: both ranks end identical, and equal to one process with batch 4.

    The same processes then train 2 GAN steps with plain (per-rank) batch norm, the default.
    """
    config = tiny_config(phase="both")
    plain = tiny_config(phase="gan", gan_steps=2, sync_batchnorm=False)
    out, results = tmp_path / "ddp", tmp_path / "results"
    results.mkdir()
    ports = free_ports(2)
    runs = [(ports[0], config.to_json(), str(out)), (ports[1], plain.to_json(), str(tmp_path / "plain"))]
    run_ranks(_train_rank, runs, str(tiny_image_dir), str(results))
    r0 = torch.load(results / "run0_rank0.pt", weights_only=True)
    r1 = torch.load(results / "run0_rank1.pt", weights_only=True)
    for net in ("generator", "discriminator", "generator_grad", "discriminator_grad"):
        for k, v in r0[net].items():  # gradients are averaged and BN statistics shared: bit-identical ranks
            assert torch.equal(v, r1[net][k]), f"{net}.{k} differs between the ranks"

    ref = single_process(config, tiny_image_dir, tmp_path / "single")
    steps = config.pretrain_steps + config.gan_steps
    for net in ("generator", "discriminator"):
        # The gradients of the last step: those of the mean loss over the global batch (Adam would hide a scale).
        want = grads(getattr(ref, net))
        assert r0[f"{net}_grad"].keys() == want.keys() and want
        for k in want.keys() - noise_driven(getattr(ref, net)):
            g = want[k]
            error = float((r0[f"{net}_grad"][k] - g).norm() / g.norm().clamp_min(1e-8))
            assert error < 1e-4, f"{net}.{k}.grad: relative error {error:.1e}"
        assert_same_training(r0[net], getattr(ref, net).state_dict(), net, lr=config.lr, steps=steps)

    # Rank 0 alone writes: one metrics line per step (log_every=1), losses of the global batch.
    ddp_lines, ref_lines = read_metrics(out), read_metrics(tmp_path / "single")
    expected = [("pretrain", 1), ("pretrain", 2), ("pretrain", 3), ("gan", 1)]
    assert [(r["phase"], r["step"]) for r in ddp_lines] == expected
    for got, want in zip(ddp_lines, ref_lines, strict=True):
        for key in ("loss", "loss_mse"):
            assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-7)
    assert ddp_lines[-1]["loss_d"] == pytest.approx(ref_lines[-1]["loss_d"], rel=1e-5)
    # The files hold plain (non-DDP) state dicts.
    state = torch.load(out / STATE_NAME, map_location="cpu", weights_only=False)
    assert not any(k.startswith("module.") for k in state["generator"])
    for k, v in state["generator"].items():
        assert torch.equal(v, r0["generator"][k]), k
    assert (out / "generator.pt").exists() and (out / "config.json").exists()

    # Plain batch norm: the same parameters and gradients on both ranks, each rank with its own running statistics.
    p0 = torch.load(results / "run1_rank0.pt", weights_only=True)
    p1 = torch.load(results / "run1_rank1.pt", weights_only=True)
    for net in ("generator", "discriminator"):
        params = dict(getattr(ref, net).named_parameters()).keys()
        for k in params:
            assert torch.equal(p0[net][k], p1[net][k]), f"{net}.{k} differs between the ranks"
            assert torch.equal(p0[f"{net}_grad"][k], p1[f"{net}_grad"][k]), f"{net}.{k}.grad differs"
    stats = "features.3.running_var"
    assert not torch.equal(p0["discriminator"][stats], p1["discriminator"][stats])
    assert [r["step"] for r in read_metrics(tmp_path / "plain")] == [1, 2]


def test_torchrun_resumes_a_single_process_checkpoint(
    tiny_image_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``torchrun -m srgan.train --resume`` with 2 processes continues a 1-process run exactly."""
    # The command builds the paper's discriminator (unused in pretraining): so must the runs it is compared with.
    monkeypatch.setattr(trainer_module, "Discriminator", Discriminator)
    config = tiny_config()
    out = tmp_path / "run"
    single_process(tiny_config(pretrain_steps=2), tiny_image_dir, out)  # steps 1-2 in one process
    ref = single_process(config, tiny_image_dir, tmp_path / "single")  # steps 1-3 in one process

    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=1",
        f"--nproc_per_node={WORLD}",
        "--rdzv_backend=c10d",
        f"--rdzv_endpoint=127.0.0.1:{free_ports(1)[0]}",
        "-m",
        "srgan.train",
        "--train-dir",
        str(tiny_image_dir),
        "--output-dir",
        str(out),
        "--resume",
        "--steps",
        "3",
        "--device",
        "cpu",
        "--no-progress",
        # plain BatchNorm would also run; synchronised statistics make the result comparable with one process
        "--set",
        "sync_batchnorm=true",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("done: steps") == 1  # only rank 0 reports
    assert "batch 4 global (2 x 2 processes)" in proc.stderr  # the effective batch is logged

    state = torch.load(out / STATE_NAME, map_location="cpu", weights_only=False)
    assert state["step"] == 3
    assert_same_training(state["generator"], ref.generator.state_dict(), "generator", lr=config.lr, steps=3)
    assert [r["step"] for r in read_metrics(out)] == [1, 2, 3]


# ---------------------------------------------------------------------------------------------------------------
# Configuration checks (no processes started)


def fake_ranks(monkeypatch: pytest.MonkeyPatch, world_size: int) -> None:
    """Make the Trainer believe it is rank 0 of ``world_size``, without a process group."""
    ctx = DistributedContext(device=torch.device("cpu"), rank=0, world_size=world_size)
    monkeypatch.setattr(trainer_module, "setup", lambda device: ctx)
    monkeypatch.setattr(Trainer, "_check_same_config", lambda self: None)
    monkeypatch.setattr(DistributedContext, "wrap", lambda self, module: module)


def test_the_global_batch_must_split_evenly(
    tiny_image_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_ranks(monkeypatch, 3)
    with pytest.raises(ConfigError, match=r"batch_size = 4 is the global batch .* divisible .* 3: use e.g. 6"):
        Trainer(tiny_config(), train_dirs=[tiny_image_dir], output_dir=tmp_path / "out", device="cpu")
    assert not (tmp_path / "out").exists()


def test_plain_batchnorm_needs_two_values_per_rank(
    tiny_image_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_ranks(monkeypatch, 4)
    gan = tiny_config(phase="gan", sync_batchnorm=False)
    with pytest.raises(ConfigError, match=r"single value per channel.*sync_batchnorm"):
        Trainer(gan, train_dirs=[tiny_image_dir], output_dir=tmp_path / "out", device="cpu")
    tr = Trainer(tiny_config(phase="gan"), train_dirs=[tiny_image_dir], output_dir=tmp_path / "out", device="cpu")
    assert tr.batch_per_rank == 1


def test_without_torchrun_setup_is_a_single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    ctx = setup("cpu")
    assert (ctx.rank, ctx.world_size, ctx.enabled, ctx.is_main, ctx.owns_process_group) == (0, 1, False, True, False)
    assert not dist.is_initialized()
    assert ctx.on_main(lambda: 7) == 7 and ctx.all_true(False) is False and ctx.mean([1.0, 2.0]) == [1.0, 2.0]
    module = torch.nn.Linear(2, 2)
    assert ctx.wrap(module) is module
    ctx.shutdown()  # nothing to destroy


def test_a_bad_world_size_variable_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ConfigError, match="WORLD_SIZE='two'"):
        setup("cpu")


def test_ranks_started_with_different_configs_stop(
    tiny_image_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Rank1(DistributedContext):  # rank 0 was started with another learning rate
        def on_main(self, fn: Callable[[], Any]) -> Any:
            return {**fn(), "lr": 0.5}

        def all_true(self, flag: bool) -> bool:
            return flag

    monkeypatch.setattr(trainer_module, "setup", lambda device: Rank1(device=torch.device("cpu"), rank=1, world_size=2))
    with pytest.raises(ConfigError, match=r"different TrainConfigs \(fields differing from rank 0's: \['lr'\]\)"):
        Trainer(tiny_config(), train_dirs=[tiny_image_dir], output_dir=tmp_path / "out", device="cpu")


def test_sync_batchnorm_conversion_keeps_parameters_and_state_dict_keys() -> None:
    g = Generator(num_blocks=1, channels=8)
    params, keys = list(g.parameters()), list(g.state_dict())
    x = torch.rand(2, 3, 4, 4)
    want = g(x)
    assert convert_sync_batchnorm(g, torch.device("cpu")) is g
    assert all(a is b for a, b in zip(g.parameters(), params, strict=True)) and list(g.state_dict()) == keys
    assert type(g.body[0].bn1).__name__ == "_SyncBatchNorm2d"
    torch.testing.assert_close(g(x), want, rtol=0, atol=0)  # one process: plain batch norm
