"""When an inference rewrite may take its CPU fast paths (in-place updates, PyTorch-private oneDNN ops): in eager
execution that no graph capture records and that needs no gradients. Shared by :mod:`srgan.models._inplace` and
:mod:`srgan.models._onednn`."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["eager_inference"]


def eager_inference(x: torch.Tensor, module: nn.Module) -> bool:
    """Whether ``module``'s forward on ``x`` runs eagerly (not traced by ``torch.jit.trace`` or ``torch.fx``, compiled
    or exported to ONNX: those graphs get the plain ops) and without autograd (neither ``x`` nor a parameter needs a
    gradient while grad mode is on). Call it before reading ``x``'s attributes: under ``torch.fx`` symbolic tracing
    ``x`` is a proxy whose attributes cannot steer Python control flow."""
    if isinstance(x, torch.fx.Proxy):  # symbolic tracing (torch.fx, torch.ao quantization's prepare_fx)
        return False
    tracing = torch.jit.is_tracing()  # type: ignore[attr-defined,no-untyped-call]
    if tracing or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export():
        return False
    needs_grad = x.requires_grad or any(p.requires_grad for p in module.parameters())
    return not (torch.is_grad_enabled() and needs_grad)
