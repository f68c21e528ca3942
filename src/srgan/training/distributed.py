"""Distributed data-parallel training: the process group from torchrun's environment and what the Trainer needs of it.

``torchrun`` starts one process per device and tells each its place through environment variables (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``). :func:`setup` reads them: with
``WORLD_SIZE > 1`` it initialises ``torch.distributed`` (NCCL on GPUs, each process on ``cuda:LOCAL_RANK``; gloo on
CPUs) and returns a :class:`DistributedContext` that owns the process group; without them it returns the
single-process context, whose collectives do nothing. A process group initialised by the caller is used as it is and
left to the caller to destroy.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..errors import ConfigError, SRGANError
from ..runtime import env_int as _env_int
from ..runtime import env_rank as env_rank
from ..runtime import env_world_size as env_world_size
from ..runtime import resolve_device

__all__ = ["DistributedContext", "setup", "env_rank", "env_world_size", "convert_sync_batchnorm"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Rank-local buffers (no broadcast of batch-norm statistics before each forward): newer PyTorch renamed the option.
_LOCAL_BUFFERS: dict[str, Any] = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
    else {"broadcast_buffers": False}
)


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in a run: ``rank`` of ``world_size`` processes, computing on ``device``.

    Every collective method is a no-op in a single process (``world_size == 1``), so the Trainer calls them
    unconditionally; in a distributed run every rank must call them in the same order.
    """

    device: torch.device
    rank: int = 0
    world_size: int = 1
    owns_process_group: bool = False

    @property
    def enabled(self) -> bool:
        """Whether this is a run of several processes."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs, validates and writes files."""
        return self.rank == 0

    def on_main(self, fn: Callable[[], T]) -> T:
        """``fn()`` computed on rank 0 only, its result sent to every rank (pickled).

        An :class:`~srgan.errors.SRGANError` or ``OSError`` raised by ``fn`` on rank 0 is raised on every rank, so
        that all processes stop with the same message instead of waiting for rank 0.
        """
        if not self.enabled:
            return fn()
        box: list[object] = [None]
        error: BaseException | None = None
        if self.is_main:
            try:
                box[0] = (fn(), None)
            except (SRGANError, OSError) as e:
                error = e
                box[0] = (None, e)
        dist.broadcast_object_list(box, src=0, device=self._collective_device)
        result, remote_error = cast(tuple[T, BaseException | None], box[0])
        if error is not None:
            raise error
        if remote_error is not None:
            raise remote_error
        return result

    def all_true(self, flag: bool) -> bool:
        """Whether ``flag`` is true on every rank."""
        if not self.enabled:
            return flag
        t = torch.tensor([int(flag)], dtype=torch.int32, device=self._collective_device)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return bool(t.item())

    def mean(self, values: list[float]) -> list[float]:
        """The mean over ranks of each value (e.g. the losses of each rank's share of the batch)."""
        if not self.enabled or not values:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self._collective_device)
        dist.all_reduce(t)
        return [float(v) / self.world_size for v in t.tolist()]

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` in :class:`DistributedDataParallel` (gradients averaged over ranks), or itself alone.

        Buffers (batch-norm running statistics) are not broadcast at each forward: each rank keeps its own, and
        rank 0's, the ones validated and saved, are the same as with broadcasting from rank 0.
        """
        if not self.enabled:
            return module
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=device_ids, **_LOCAL_BUFFERS)

    def shutdown(self) -> None:
        """Destroy the process group if :func:`setup` created it (safe to call more than once)."""
        if self.owns_process_group and dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()

    @property
    def _collective_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")


def _rank_device(device: str | torch.device | None, local_rank: int) -> torch.device:
    """The device of the process with ``local_rank`` on its machine: ``auto`` and ``cuda`` mean cuda:LOCAL_RANK."""
    if device is None or device == "auto":
        dev = torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    else:
        dev = resolve_device(device)
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", local_rank)
    if dev.type not in ("cuda", "cpu"):
        raise ConfigError(f"distributed training runs on CUDA GPUs (nccl) or on CPUs (gloo), not on {dev}")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(
            f"this process needs {dev} (LOCAL_RANK {local_rank}), but only {torch.cuda.device_count()} GPUs are "
            "visible: start at most that many processes per node (--nproc_per_node)"
        )
    return dev


def setup(device: str | torch.device | None = "auto") -> DistributedContext:
    """The context of this process, initialising ``torch.distributed`` from torchrun's environment when needed.

    Args:
        device: as for :class:`~srgan.training.Trainer`. In a distributed run ``"auto"`` and ``"cuda"`` mean
            ``cuda:LOCAL_RANK`` (CPU without CUDA); an explicit ``"cuda:N"`` is used as given.

    Returns:
        A single-process context when ``WORLD_SIZE`` is absent or 1 and no process group exists; otherwise the
        context of this rank, owning the process group if this call created it (NCCL for CUDA, gloo for CPU).
    """
    initialised = dist.is_available() and dist.is_initialized()
    if not initialised and env_world_size() <= 1:
        return DistributedContext(device=resolve_device(device))
    if not dist.is_available():
        raise ConfigError(
            f"WORLD_SIZE={env_world_size()} asks for distributed training, but this PyTorch build has no "
            "torch.distributed"
        )
    default_local = torch.cuda.current_device() if torch.cuda.is_available() else 0
    dev = _rank_device(device, _env_int("LOCAL_RANK", default_local))
    if initialised:
        return DistributedContext(device=dev, rank=dist.get_rank(), world_size=dist.get_world_size())
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl", device_id=dev)
    else:
        dist.init_process_group(backend="gloo")
    ctx = DistributedContext(
        device=dev, rank=dist.get_rank(), world_size=dist.get_world_size(), owns_process_group=True
    )
    logger.debug("rank %d of %d on %s (%s)", ctx.rank, ctx.world_size, dev, dist.get_backend())
    return ctx


# ---------------------------------------------------------------------------------------------------------------
# Batch norm over the global batch


class _AllReduceSum(torch.autograd.Function):
    """The sum of a tensor over ranks; its gradient is the sum over ranks of the output's gradients."""

    @staticmethod
    def forward(ctx: Any, t: torch.Tensor) -> torch.Tensor:
        out = t.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        out = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out


def _all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    return cast(torch.Tensor, _AllReduceSum.apply(t))


class _SyncBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training-mode statistics cover every rank's batch, on any device and backend.

    PyTorch's :class:`torch.nn.SyncBatchNorm` runs only on GPUs; this one also runs on CPUs with gloo. The mean and
    (two-pass) variance are sums all-reduced across ranks with an autograd-aware all-reduce, so gradients flow
    through the global statistics as in a single process holding the whole batch. Outside training, or in a
    single process, it is plain ``BatchNorm2d``.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(input)
        self._check_input_dim(input)
        x = input.float()
        shape = (1, -1, 1, 1)
        count = x.new_full((1,), float(x.numel() // x.shape[1]))
        stats = _all_reduce_sum(torch.cat([x.sum((0, 2, 3)), count]))
        n = stats[-1].detach()
        if float(n) <= 1:
            raise ValueError(f"expected more than 1 value per channel when training, got input size {input.shape}")
        mean = stats[:-1] / n
        centered = x - mean.view(shape)
        var = _all_reduce_sum(centered.square().sum((0, 2, 3))) / n
        out = centered * torch.rsqrt(var + self.eps).view(shape)
        if self.weight is not None and self.bias is not None:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.running_mean is not None and self.running_var is not None and self.num_batches_tracked is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), factor)
                unbiased = var.detach() * (n / (n - 1))
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), factor)
        return out.to(input.dtype)


def _to_sync(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.BatchNorm2d) and not isinstance(module, _SyncBatchNorm2d):
        out = _SyncBatchNorm2d(
            module.num_features,
            eps=module.eps,
            momentum=module.momentum,
            affine=module.affine,
            track_running_stats=module.track_running_stats,
        )
        # The same Parameter and buffer objects: optimizers and state dicts keep working.
        out.weight, out.bias = module.weight, module.bias
        out.running_mean, out.running_var = module.running_mean, module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
        return out
    for name, child in module.named_children():
        module.add_module(name, _to_sync(child))
    return module


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Replace ``module``'s ``BatchNorm2d`` layers (in place) by layers normalising over the global batch.

    :class:`torch.nn.SyncBatchNorm` on CUDA; on other devices a gloo-capable equivalent. Parameters, buffers and
    state-dict keys are unchanged, so checkpoints load into plain ``BatchNorm2d`` models.
    """
    if device.type == "cuda":
        return cast(nn.Module, nn.SyncBatchNorm.convert_sync_batchnorm(module))  # type: ignore[no-untyped-call]
    return _to_sync(module)
