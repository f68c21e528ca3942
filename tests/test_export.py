"""srgan.export: TorchScript and ONNX files with dynamic batch, height and width, BatchNorm folded."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from peer_helpers import classic, msrresnet
from srgan import SRGAN, Generator
from srgan.export import export_onnx, export_torchscript

pytestmark = pytest.mark.filterwarnings(r"ignore:`torch\.jit\.load` is deprecated:FutureWarning")

SIZES = [(1, 3, 10, 14), (3, 3, 17, 9)]  # neither is the export example's (2, 3, 24, 20)

MODELS: dict[str, Callable[[Generator], nn.Module]] = {
    "srgan": lambda g: g,
    "classic-x2-bn": lambda g: classic(scale=2, num_blocks=2),
    "msrresnet-x3": lambda g: msrresnet(scale=3, num_blocks=2),
}


def _onnx_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxscript", "onnxruntime"))


@pytest.mark.parametrize("name", list(MODELS))
def test_torchscript_matches_pytorch_at_any_size(tmp_path: Path, tiny_generator: Generator, name: str) -> None:
    model = MODELS[name](tiny_generator)
    path = export_torchscript(model, tmp_path / "model.pt")
    assert path == tmp_path / "model.pt" and not list(tmp_path.glob(".*partial"))
    scripted = torch.jit.load(str(path))
    for shape in SIZES:
        x = torch.rand(shape)
        with torch.no_grad():
            torch.testing.assert_close(scripted(x), model(x), atol=1e-4, rtol=0)


def test_torchscript_has_batchnorm_folded(tmp_path: Path, tiny_generator: Generator) -> None:
    scripted = torch.jit.load(str(export_torchscript(SRGAN(tiny_generator, device="cpu"), tmp_path / "m.pt")))
    assert "batch_norm" not in str(scripted.inlined_graph)
    assert "_convolution" in str(scripted.inlined_graph)


@pytest.mark.skipif(not _onnx_available(), reason="needs onnx, onnxscript and onnxruntime (pip install srgan[export])")
@pytest.mark.parametrize("name", ["srgan", "msrresnet-x3"])
def test_onnx_runtime_matches_pytorch_at_any_size(tmp_path: Path, tiny_generator: Generator, name: str) -> None:
    import onnxruntime

    model = MODELS[name](tiny_generator)
    path = export_onnx(model, tmp_path / "model.onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert inp.name == "input" and out.name == "output"
    assert inp.shape[1] == 3 and all(isinstance(d, str) for d in (inp.shape[0], inp.shape[2], inp.shape[3]))
    for shape in SIZES:
        x = torch.rand(shape)
        (y,) = session.run(None, {"input": x.numpy()})
        with torch.no_grad():
            torch.testing.assert_close(torch.from_numpy(y), model(x), atol=1e-4, rtol=0)


def test_onnx_without_its_packages_says_what_to_install(
    tmp_path: Path, tiny_generator: Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # import fails as if not installed
    with pytest.raises(ImportError, match=r"pip install \"srgan\[export\]\""):
        export_onnx(tiny_generator, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []
