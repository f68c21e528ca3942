"""``import srgan`` loads the inference side only; the rest of the public names load on first use."""

from __future__ import annotations

import json
import subprocess
import sys

# Modules that ``import srgan`` must not load (unless ``import torch`` alone already does, as some torch versions
# do for tqdm and the DataLoader).
HEAVY = (
    "srgan.training",
    "srgan.training.trainer",
    "srgan.losses",
    "srgan.cli",
    "torchvision",
    "torchvision.models",
    "tqdm",
    "torch.utils.data.dataloader",
)


def _loaded_after(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_import_srgan_stays_off_training_and_heavy_modules() -> None:
    by_torch = _loaded_after("import torch")
    by_srgan = _loaded_after("import srgan")
    assert "srgan.pipeline" in by_srgan
    unexpected = sorted(m for m in HEAVY if m in by_srgan and m not in by_torch)
    assert unexpected == []
    assert not any(m.startswith("srgan.training") for m in by_srgan)


def test_every_public_name_resolves() -> None:
    code = (
        "import srgan\n"
        "missing = [n for n in srgan.__all__ if getattr(srgan, n, None) is None]\n"
        "assert not missing, missing\n"
        "assert set(srgan.__all__) <= set(dir(srgan))\n"
        "from srgan import Trainer, TrainConfig, PerceptualLoss, evaluate\n"
        "import srgan.training\n"
        "assert srgan.Trainer is srgan.training.Trainer and srgan.training.TrainConfig is TrainConfig\n"
        "from srgan.evaluation import main\n"
        "from srgan.cli.eval import main as eval_main\n"
        "assert main is eval_main\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
