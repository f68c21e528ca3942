"""Layers point down only: every import between srgan's modules goes to the same layer or a lower one.

The layers are those of docs/architecture.md. Imports under ``if TYPE_CHECKING:`` are for type checkers only and
are not counted, nor are those in a module-level ``__getattr__`` (deprecation shims of moved names); other
function-level imports are.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "srgan"

LAYERS: dict[str, int] = {
    # runtime
    "srgan.errors": 0,
    "srgan._version": 0,
    "srgan.runtime": 0,
    "srgan._files": 0,
    "srgan._dihedral": 0,
    # components
    "srgan._state_dict": 1,
    "srgan.models": 1,
    "srgan.degradation": 1,
    "srgan.metrics": 1,
    "srgan.losses": 1,
    "srgan._tiling": 1,
    "srgan._fuse": 1,
    # I/O
    "srgan._image": 2,
    "srgan.hub": 2,
    "srgan.weights": 2,
    "srgan._peers": 2,
    "srgan._resolve": 2,
    "srgan._prefetch": 2,
    # evaluation and inference
    "srgan.niqe": 3,
    "srgan.evaluation": 3,
    "srgan._scheduler": 3,
    "srgan.pipeline": 3,
    "srgan.transforms": 3,
    "srgan.export": 3,
    "srgan.compare": 3,
    # training
    "srgan.training": 4,
    "srgan.recipes": 4,
    # command lines
    "srgan.cli": 5,
    "srgan.train": 5,
    "srgan.__main__": 5,
}

# The package's front door re-exports every layer (lazily), and a deprecated module forwards to its new home.
EXEMPT = {"srgan", "srgan.training.cli"}


def layer_of(module: str) -> int:
    parts = module.split(".")
    for n in range(len(parts), 1, -1):
        name = ".".join(parts[:n])
        if name in LAYERS:
            return LAYERS[name]
    raise KeyError(f"{module} has no layer in tests/test_layers.py: add it (and to docs/architecture.md)")


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    """Nodes not counted: ``if TYPE_CHECKING:`` and ``if __name__ == "__main__":`` blocks, and a module-level
    ``__getattr__`` (the forwarding shim of names that moved to a higher layer, kept for compatibility)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and (
            "TYPE_CHECKING" in ast.unparse(node.test) or "__main__" in ast.unparse(node.test)
        ):
            for child in node.body:
                skip.update(id(n) for n in ast.walk(child))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
            skip.update(id(n) for n in ast.walk(node))
    return skip


def srgan_imports(path: Path) -> list[str]:
    """The srgan modules ``path`` imports (relative imports resolved)."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    skip = _type_checking_nodes(tree)
    out: list[str] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "srgan" or target.startswith("srgan."):
                # "from . import hub" names a module
                out += [f"{target}.{a.name}" if not node.module and node.level else target for a in node.names]
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.startswith("srgan")]
    return out


MODULES = sorted(p for p in SRC.rglob("*.py") if module_name(p) not in EXEMPT)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_point_down(path: Path) -> None:
    me = module_name(path)
    mine = layer_of(me)
    upward = [(t, layer_of(t)) for t in srgan_imports(path) if t != "srgan" and layer_of(t) > mine]
    assert not upward, f"{me} (layer {mine}) imports from higher layers: {upward}"


def test_every_module_has_a_layer() -> None:
    for path in SRC.rglob("*.py"):
        if module_name(path) not in EXEMPT:
            layer_of(module_name(path))


INFERENCE = ("srgan.pipeline", "srgan._scheduler", "srgan.transforms", "srgan.export", "srgan.compare")


@pytest.mark.parametrize("path", sorted((SRC / "training").rglob("*.py")), ids=lambda p: module_name(p))
def test_training_never_imports_the_inference_object(path: Path) -> None:
    if module_name(path) in EXEMPT:
        return
    found = [t for t in srgan_imports(path) if t.startswith(INFERENCE)]
    assert not found, f"{module_name(path)} imports inference code: {found}"


def test_the_checker_resolves_relative_imports_and_sees_upward_ones(tmp_path: Path) -> None:
    found = srgan_imports(SRC / "training" / "trainer.py")
    assert "srgan.training.config" in found and "srgan._files" in found and "srgan.evaluation" in found
    # A module written like srgan's, with an upward import and a TYPE_CHECKING-only one.
    fake = tmp_path / "srgan" / "weights.py"
    fake.parent.mkdir()
    fake.write_text(
        "from typing import TYPE_CHECKING\nfrom .pipeline import SRGAN\nfrom . import hub\n"
        "if TYPE_CHECKING:\n    from .training import Trainer\n"
    )
    tree_imports = _imports_of(fake, "srgan.weights")
    assert tree_imports == ["srgan.pipeline", "srgan.hub"]
    assert [t for t in tree_imports if layer_of(t) > layer_of("srgan.weights")] == ["srgan.pipeline"]


def _imports_of(path: Path, name: str) -> list[str]:
    global SRC
    saved = SRC
    SRC = path.parents[1] / "srgan"
    try:
        return srgan_imports(path)
    finally:
        SRC = saved
