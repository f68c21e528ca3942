"""``srgan export``: TorchScript and ONNX files from a model name or path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from srgan import SRGAN
from srgan.cli import main

pytestmark = pytest.mark.filterwarnings(r"ignore:`torch\.jit\.load` is deprecated:FutureWarning")


def test_export_torchscript(tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sub" / "model.pt"
    assert main(["export", "--model", str(tiny_model_dir), "--format", "torchscript", "-o", str(out)]) == 0
    assert f"wrote {out} (torchscript)" in capsys.readouterr().out
    scripted = torch.jit.load(str(out))
    generator = SRGAN.from_pretrained(tiny_model_dir).generator
    x = torch.rand(2, 3, 9, 13)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), generator(x), atol=1e-4, rtol=0)


@pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxscript", "onnxruntime")),
    reason="needs onnx, onnxscript and onnxruntime",
)
def test_export_onnx(tmp_path: Path, tiny_model_dir: Path) -> None:
    import onnxruntime

    out = tmp_path / "model.onnx"
    assert main(["export", "--model", str(tiny_model_dir), "--format", "onnx", "-o", str(out), "-q"]) == 0
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"input": torch.rand(1, 3, 7, 5).numpy()})
    assert y.shape == (1, 3, 28, 20)


def test_export_errors(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nope.pt"
    assert main(["export", "--model", str(missing), "--format", "onnx", "-o", str(tmp_path / "m.onnx")]) == 2
    assert "cannot load model" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert main(["export", "--model", str(tiny_model_dir), "--format", "onnx", "-o", str(tmp_path / "m.onnx")]) == 2
    assert "pip install" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", "--model", str(tiny_model_dir), "--format", "tflite", "-o", str(tmp_path / "m")])
    assert not list(tmp_path.glob("m*"))
