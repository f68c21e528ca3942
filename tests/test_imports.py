"""``import srgan`` loads the inference side only; the rest of the public names load on first use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


# What an upscale with the packaged model must not load either: torch's compiler stack (about 2 s, pulled in by
# torch's meta-device normal_ when a model is initialised on the meta device), and the HTTP client (only downloads
# need it).
INFERENCE_HEAVY = (
    *(m for m in HEAVY if m != "srgan.cli"),
    "torch._dynamo",
    "sympy",
    "requests",
    "urllib3",
    "srgan.cli.train",
    "srgan.evaluation",
)


def _loaded_after(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    return set(json.loads(done.stdout.splitlines()[-1]))


def _unexpected(statement: str, heavy: tuple[str, ...] = INFERENCE_HEAVY) -> list[str]:
    """The modules of ``heavy`` that ``statement`` loads in a fresh interpreter and ``import torch`` alone does not."""
    by_torch = _loaded_after("import torch")
    loaded = _loaded_after(statement)
    return sorted(m for m in heavy if m in loaded and m not in by_torch)


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


def test_import_srgan_loads_no_compiler_or_http_client() -> None:
    assert _unexpected("import srgan") == []


def test_cli_upscale_with_the_packaged_model_stays_on_the_inference_side(tmp_path: Path) -> None:
    """A whole ``srgan upscale`` run (packaged weights: sha256 check, meta-device architecture check, build, BN
    folding, upscale, save) loads no training code, torchvision, torch._dynamo, sympy or requests."""
    from PIL import Image

    src, out = tmp_path / "small.png", tmp_path / "out.png"
    Image.new("RGB", (12, 10), (120, 60, 30)).save(src)
    run = f"from srgan.cli import main\nassert main(['upscale', {str(src)!r}, '-o', {str(out)!r}, '-q']) == 0"
    assert _unexpected(run) == []
    assert out.is_file()


def test_from_pretrained_and_meta_device_builds_load_no_compiler() -> None:
    statement = (
        "import torch\n"
        "from srgan import SRGAN\n"
        "from srgan.models import Generator\n"
        "with torch.device('meta'):\n"
        "    g = Generator()\n"
        "assert g.tail.weight.is_meta\n"
        "SRGAN.from_pretrained('srresnet-x4')\n"
    )
    assert _unexpected(statement, ("torch._dynamo", "sympy", "requests")) == []


def test_hub_requests_is_imported_on_first_use() -> None:
    statement = "from srgan import hub\nassert 'requests' not in sys.modules\nassert hub.requests.get\n"
    assert "requests" in _loaded_after(statement)
