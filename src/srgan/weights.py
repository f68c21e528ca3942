"""Known weights (a registry described as data) and the checkpoint file format.

A generator checkpoint is a plain-data dict, loadable with ``torch.load(weights_only=True)``::

    {
        "format": "srgan.generator",
        "format_version": 1,
        "config": {"scale": 4, "num_blocks": 16, "channels": 64},
        "state_dict": {...},            # fp16 or fp32 tensors; loaded as fp32
        "meta": {...},                  # free-form JSON-able description (data, loss, steps, metrics)
    }

Version 2 adds ``"arch"``, the name of another generator architecture (``"srgan-classic"``, ``"msrresnet"``, or
any other registered in :mod:`srgan.models.registry`), with that architecture's config. Files of this library's
own Generator are still written as version 1 (no ``"arch"``), so older srgan versions keep reading them.

Plain state dicts are accepted too, their architecture detected and read from the keys and tensor shapes by the
registry: this library's :class:`~srgan.models.Generator`, the "srgan-classic" layout, BasicSR's MSRResNet (also
wrapped as ``{"params": ...}`` or ``{"params_ema": ...}``), and any registered generator architecture.
"""

from __future__ import annotations

import glob
import logging
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO, Any, cast

import torch

from ._files import atomic_write
from ._state_dict import canonical_state_dict, check_state_dict, load_weights
from .errors import (
    CheckpointError,
    ChecksumMismatchError,
    ConfigError,
    IncompatibleCheckpointError,
    SRGANError,
    UnknownModelError,
)
from .models import ModelConfig, SRModel, registry
from .models.generator import ARCHITECTURE as SRGAN_ARCHITECTURE
from .models.generator import GeneratorConfig

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "WeightsEntry",
    "REGISTRY",
    "DEFAULT_MODEL",
    "get_entry",
    "list_models",
    "packaged_path",
    "save_checkpoint",
    "load_checkpoint",
    "build_generator",
    "check_architecture",
    "infer_config",
    "checked_tensors",
    "Checkpoint",
]

logger = logging.getLogger(__name__)

FORMAT = "srgan.generator"
FORMAT_VERSION = 2
"""Newest checkpoint format version this srgan reads (and writes for peer architectures)."""

_OWN_ARCH = SRGAN_ARCHITECTURE.name  # written as format version 1, without "arch"


@dataclass(frozen=True)
class WeightsEntry:
    """One set of known weights.

    Attributes:
        name: registry name, e.g. ``"srresnet-x4"``.
        description: one line for ``srgan models``.
        config: the generator architecture.
        sha256: hex digest of the file (verified after every download and on every load).
        file: file name inside the package's ``srgan/weights/`` folder, for weights shipped in the wheel.
        url: https URL for downloadable weights (used when ``file`` is None).
        trained_on: training data.
        loss: training objective, stated exactly.
        metrics: measured results, e.g. ``{"Set5_psnr_y": 30.9}``.
    """

    name: str
    description: str
    config: GeneratorConfig
    sha256: str
    file: str | None = None
    url: str | None = None
    trained_on: str = ""
    loss: str = ""
    metrics: dict[str, float] = field(default_factory=dict)


REGISTRY: dict[str, WeightsEntry] = {}
"""Known weights by name. Filled from the entries below."""

DEFAULT_MODEL: str | None = None
"""Name used by ``SRGAN.from_pretrained()`` with no argument (None until packaged weights exist)."""


def _register(entry: WeightsEntry) -> None:
    REGISTRY[entry.name] = entry


_register(
    WeightsEntry(
        name="srresnet-x4",
        description="SRResNet x4 (16 blocks, BN), pixel loss, PSNR-oriented; Set5 31.40 dB, Set14 28.08 dB",
        config=GeneratorConfig(scale=4, num_blocks=16, channels=64),
        sha256="8163840b2db8f4cd95a7b425337669833f66258471a728f10673caf3aab01f95",
        file="srresnet-x4.pt",
        trained_on="T91 + BSDS200 (291 images), MATLAB-style bicubic x4 LR rounded to 8 bits",
        loss=(
            "L1 pixel loss, then self-distillation (a second target: the model's own x8 self-ensemble output) and "
            "a last MSE fine-tune (MSE on RGB + 2x MSE on luma, batch norm frozen). No VGG perceptual loss, no "
            "adversarial term"
        ),
        metrics={
            "Set5_psnr_y": 31.40,
            "Set5_ssim_y": 0.8840,
            "Set14_psnr_y": 28.08,
            "Set14_ssim_y": 0.7688,
            "Set14_niqe": 6.31,
        },
    )
)
_register(
    WeightsEntry(
        name="srgan-x4",
        description="SRGAN x4 (srresnet-x4 fine-tuned adversarially), perceptual; Set14 NIQE 4.28 at 27.30 dB",
        config=GeneratorConfig(scale=4, num_blocks=16, channels=64),
        sha256="2a5e61286c613d2fb8a1092288c80331558a5ba663561c779e4abbaeaf996eb2",
        file="srgan-x4.pt",
        trained_on="T91 + BSDS200 (291 images), MATLAB-style bicubic x4 LR rounded to 8 bits",
        loss=(
            "L1 pixel loss + 1e-3 relativistic average adversarial loss + 0.5 discriminator feature matching "
            "(no VGG perceptual loss: the ImageNet VGG19 weights were not available where it was trained)"
        ),
        metrics={
            "Set5_psnr_y": 30.50,
            "Set5_ssim_y": 0.8689,
            "Set14_psnr_y": 27.30,
            "Set14_ssim_y": 0.7437,
            "Set14_niqe": 4.28,
        },
    )
)
_register(
    WeightsEntry(
        name="srresnet-x4-real",
        description=(
            "SRResNet x4 for real photos (JPEG, noise, blur): pixel loss on real-world degradations; "
            "Set14 real-fixed 25.38 dB"
        ),
        config=GeneratorConfig(scale=4, num_blocks=16, channels=64),
        sha256="286fdabe72c52b53bf9c86dc6cb76ae3ff4ff2d04ee06d8fc56029c31821fdfb",
        file="srresnet-x4-real.pt",
        trained_on=(
            "T91 + BSDS200 (291 images), LR made in each step by Real-ESRGAN's second-order degradation with the "
            "'real-mild' ranges (blur, resize, Gaussian/Poisson noise, JPEG 60..95, twice, then sinc and JPEG)"
        ),
        loss="L1 pixel loss, fine-tuned from srresnet-x4 (recipe srresnet-x4-real). No VGG, no adversarial term",
        metrics={
            "Set5_psnr_y": 29.08,
            "Set5_ssim_y": 0.8369,
            "Set14_psnr_y": 26.58,
            "Set14_ssim_y": 0.7164,
            "Set5_real_fixed_psnr_y": 27.34,
            "Set14_real_fixed_psnr_y": 25.38,
            "Set14_real_fixed_ssim_y": 0.6571,
            "Set14_real_fixed_niqe": 7.65,
        },
    )
)
# The perceptual model is the default: it meets its acceptance bar (Set14 NIQE <= 4.6 at >= 26.8 dB, no visible
# GAN artifacts on the gallery; docs/models.md). Use "srresnet-x4" for the highest PSNR.
DEFAULT_MODEL = "srgan-x4"


def list_models() -> list[WeightsEntry]:
    """All registered weights, sorted by name."""
    return [REGISTRY[k] for k in sorted(REGISTRY)]


def get_entry(name: str) -> WeightsEntry:
    """The registry entry called ``name``; :class:`UnknownModelError` lists the known names otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY)) or "(none)"
        raise UnknownModelError(
            f"unknown model {name!r}: not a registered name ({known}), an existing file or folder, or an https URL"
        ) from None


def packaged_path(entry: WeightsEntry) -> Path:
    """Filesystem path of a weights file shipped inside the package."""
    if entry.file is None:
        raise UnknownModelError(f"model {entry.name!r} is not packaged with srgan; it is downloaded from {entry.url}")
    path = Path(str(resources.files("srgan").joinpath("weights").joinpath(entry.file)))
    if not path.is_file():
        raise CheckpointError(
            f"packaged weights for {entry.name!r} are missing at {path}; the installation is incomplete: "
            "reinstall srgan"
        )
    return path


@dataclass
class Checkpoint:
    """A loaded generator checkpoint: architecture, fp32 state dict (in the architecture's own key names),
    metadata. The type of ``config`` says the architecture (see :data:`srgan.models.ModelConfig`)."""

    config: ModelConfig
    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any]


def save_checkpoint(
    path: str | os.PathLike[str],
    generator: SRModel,
    *,
    meta: dict[str, Any] | None = None,
    half: bool = False,
) -> Path:
    """Write ``generator`` to ``path`` atomically (temporary file in the same folder, then rename).

    Args:
        path: destination file.
        generator: the model to save (any device/dtype; stored on CPU): srgan's :class:`Generator` or another
            registered generator architecture (written as format version 2 with its ``"arch"``).
        meta: JSON-able metadata stored beside the weights.
        half: store floating tensors as fp16 (half the size; loaded back as fp32).
    """
    path = Path(path)
    arch = registry.for_model(generator)
    if not arch.is_generator:
        raise ConfigError(f"save_checkpoint writes generators; got a {arch.name!r} model ({type(generator).__name__})")
    state = {}
    for k, v in generator.state_dict().items():
        t = v.detach().to("cpu")
        if t.is_floating_point():
            t = t.half() if half else t.float()
        state[k] = t.clone()
    payload: dict[str, Any] = {"format": FORMAT, "format_version": 1 if arch.name == _OWN_ARCH else 2}
    if arch.name != _OWN_ARCH:
        payload["arch"] = arch.name
    payload.update(config=arch.config_to_dict(generator.config), state_dict=state, meta=dict(meta or {}))
    atomic_torch_save(payload, path)
    return path


_TEMP_SUFFIX = ".tmp"  # atomic_torch_save writes ``.<name>.<random>.tmp`` beside the destination


def atomic_torch_save(obj: object, path: Path) -> None:
    """``torch.save`` to a temporary file in ``path``'s folder, fsync, then ``os.replace`` into place.

    Raises:
        OSError: the file could not be written (disk full, no permission...); same errno, a message naming
            ``path``. The temporary file is removed and an existing ``path`` is left unchanged.
    """

    def write(f: IO[bytes]) -> None:
        writer = _WriteErrorTrap(f)
        try:
            torch.save(obj, cast(IO[bytes], writer))  # torch.save calls only write() and flush()
        except RuntimeError as e:
            # torch reports a failed write as an opaque RuntimeError ("unexpected pos ..."): raise the cause.
            if writer.error is None:
                raise
            raise writer.error from e

    try:
        atomic_write(path, write, suffix=_TEMP_SUFFIX, fsync=True)
    except OSError as e:
        message = (
            f"could not write {path}: {e.strerror or e}. The previous {path.name}, if any, is unchanged; "
            "free some disk space or choose another folder, then save again"
        )
        # OSError(errno, ...) keeps the errno and picks the matching subclass (PermissionError...).
        raise (OSError(message) if e.errno is None else OSError(e.errno, message)) from e


class _WriteErrorTrap:
    """A file wrapper that remembers the ``OSError`` of a failed ``write`` (torch.save replaces it)."""

    def __init__(self, file: Any) -> None:
        self._file = file
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            written: int = self._file.write(data)
        except OSError as e:
            self.error = e
            raise
        return written

    def flush(self) -> None:
        self._file.flush()


def remove_leftover_temp_files(path: Path) -> list[Path]:
    """Delete the temporary files that :func:`atomic_torch_save` left beside ``path`` when its process was killed.

    Only call this when no other process is saving ``path``. Returns the deleted files.
    """
    removed = []
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*{_TEMP_SUFFIX}"):
        try:
            leftover.unlink()
        except OSError as e:
            logger.warning("could not delete the leftover temporary file %s: %s", leftover, e)
            continue
        logger.info("deleted %s, left by an interrupted save of %s", leftover, path.name)
        removed.append(leftover)
    return removed


def infer_config(state_dict: dict[str, torch.Tensor]) -> GeneratorConfig:
    """Read the architecture of this library's :class:`Generator` from a state dict's keys and shapes."""
    return SRGAN_ARCHITECTURE.config_from_state_dict(state_dict)


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (FileNotFoundError, IsADirectoryError, PermissionError, MemoryError):
        raise
    except Exception as e:
        not_torch = _not_a_torch_file(path)
        if not_torch is not None:
            raise CheckpointError(
                f"{path} is not a PyTorch checkpoint: {not_torch}. Check where it came from, delete it and download "
                "or save it again"
            ) from e
        if not isinstance(e, pickle.UnpicklingError):
            raise _unreadable(path, e) from e
        raise CheckpointError(
            f"refused to load {path}: it is not a plain-data checkpoint (weights_only loading rejected it: "
            f"{_unpickling_reason(e)}). It may contain code; only load files you trust, and convert them to "
            "a plain state dict."
        ) from e


def _unreadable(path: Path, e: Exception) -> CheckpointError:
    detail = str(e).splitlines()[0] if str(e) else ""
    return CheckpointError(
        f"cannot read {path} as a PyTorch checkpoint ({type(e).__name__}: {detail}); the file is corrupt, "
        "truncated or not a checkpoint: delete it and download or save it again"
    )


def _not_a_torch_file(path: Path) -> str | None:
    """Why ``path`` cannot be a file ``torch.save`` wrote (a zip archive or a pickle), or None if it may be one."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return None
    if head.startswith((b"PK", b"\x80")):  # torch.save's zip format; a pickle of protocol 2 or later
        return None
    if not head:
        return "the file is empty"
    if head.lstrip().lower().startswith((b"<!doctype html", b"<html")):
        return f"it is an HTML page (it starts with {head[:32]!r}), such as a web server's error or login page"
    return f"it starts with {head[:32]!r}, neither a zip archive nor a pickle"


def _unpickling_reason(error: Exception) -> str:
    """The specific lines of torch's weights_only error (e.g. the refused global), without its generic advice."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    generic = ("Weights only load failed", "Please file an issue", "Check the documentation")
    specific = [line for line in lines if not line.startswith(generic)]
    return " ".join(specific) or (lines[0] if lines else type(error).__name__)


def load_checkpoint(path: str | os.PathLike[str], *, sha256: str | None = None) -> Checkpoint:
    """Load and validate a generator checkpoint with ``torch.load(weights_only=True)``.

    Accepts srgan checkpoint files and plain state dicts of every registered generator architecture.

    Raises:
        ChecksumMismatchError: ``sha256`` given and the file differs.
        CheckpointError: unreadable, not plain data, or holding NaN/inf.
        IncompatibleCheckpointError: written by a newer srgan, or not a generator checkpoint (the message lists
            what the file holds).
    """
    path = Path(path)
    if sha256 is not None:
        from .hub import sha256_file

        got = sha256_file(path)
        if got != sha256:
            raise ChecksumMismatchError(
                f"{path} has sha256 {got}, expected {sha256}: the file is corrupt or was modified. "
                "Delete it and reinstall or download it again."
            )
    obj = _torch_load(path)
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"{path} holds a {type(obj).__name__}, expected a dict (an srgan checkpoint or a state dict): it is not "
            "a model file srgan can load"
        )
    if "format" in obj:
        arch, config, state, meta = _read_srgan_checkpoint(obj, path)
    else:
        state = _string_keys(canonical_state_dict(obj), path)
        arch, config = _architecture_of(state, path)
        meta = {}
    if not arch.is_generator:
        raise IncompatibleCheckpointError(
            f"{path} holds a {arch.name!r} model ({arch.model_class.__name__}), not a generator; srgan upscales "
            "with generators only"
        )
    return Checkpoint(config=config, state_dict=checked_tensors(state, source=str(path)), meta=meta)


_EDITED = "the file is corrupt or was not written by srgan: use the checkpoint as srgan saved it"


def _read_srgan_checkpoint(
    obj: dict[Any, Any], path: Path
) -> tuple[registry.Architecture[Any, Any], ModelConfig, dict[str, Any], dict[str, Any]]:
    """Architecture, config, state dict and meta of a dict in srgan's checkpoint format, each entry checked."""
    if obj.get("format") != FORMAT:
        raise IncompatibleCheckpointError(f"{path} has format {obj.get('format')!r}, expected {FORMAT!r}")
    version = obj.get("format_version")
    if type(version) is not int or version < 1:
        raise CheckpointError(
            f"{path} has checkpoint format version {version!r}, expected an integer from 1 to {FORMAT_VERSION}; "
            + _EDITED
        )
    if version > FORMAT_VERSION:
        raise IncompatibleCheckpointError(
            f"{path} uses checkpoint format version {version!r}, newer than this srgan supports "
            f"({FORMAT_VERSION}): upgrade srgan (pip install -U srgan)"
        )
    for key in ("config", "state_dict"):
        if key not in obj:
            raise CheckpointError(f"{path} has no {key!r} entry, which every srgan checkpoint has; " + _EDITED)
    entries = {"config": obj["config"], "state_dict": obj["state_dict"], "meta": obj.get("meta") or {}}
    for key, value in entries.items():
        if not isinstance(value, Mapping):
            raise CheckpointError(
                f"{path}: expected its {key!r} entry to be a dict, got {type(value).__name__} {value!r:.60}; " + _EDITED
            )
    name = obj.get("arch", _OWN_ARCH)
    if not isinstance(name, str):
        raise CheckpointError(
            f"{path}: expected its 'arch' entry to be an architecture name, got {type(name).__name__}; " + _EDITED
        )
    try:
        arch = registry.get(name)
    except ConfigError as e:
        raise IncompatibleCheckpointError(f"{path}: {e}") from e
    try:
        config = arch.config_from_dict(dict(entries["config"]))
    except ConfigError as e:
        advice = "" if "upgrade srgan" in str(e) else "; " + _EDITED
        raise IncompatibleCheckpointError(
            f"{path} has an unusable architecture config {dict(entries['config'])!r:.200}: {e}{advice}"
        ) from e
    return arch, config, _string_keys(entries["state_dict"], path), dict(entries["meta"])


def _string_keys(state: Mapping[Any, Any], path: Path) -> dict[str, Any]:
    """``state`` as a dict, after checking that every key is a string (a parameter name)."""
    for key in state:
        if not isinstance(key, str):
            raise CheckpointError(
                f"{path}: expected string state-dict keys (parameter names such as 'head.0.weight'), got "
                f"{type(key).__name__} {key!r}; the file is not a state dict srgan can load"
            )
    return dict(state)


def _architecture_of(state: dict[str, Any], path: Path) -> tuple[registry.Architecture[Any, Any], ModelConfig]:
    """The architecture of a plain state dict and its config, read from the keys and shapes by the registry.

    Registered architectures (srgan's and others') parse untrusted data here: whatever they raise becomes an
    :class:`IncompatibleCheckpointError` naming the file.
    """
    try:
        arch = registry.detect(state)
        config: ModelConfig = arch.config_from_state_dict(state)
    except CheckpointError as e:
        raise type(e)(f"{path}: {e}") from e
    except ConfigError as e:  # the shapes describe a config outside its architecture's bounds
        raise IncompatibleCheckpointError(f"{path}: its weights describe an unusable model: {e}; {_EDITED}") from e
    except SRGANError:
        raise
    except (ValueError, TypeError, IndexError, KeyError, AttributeError, ZeroDivisionError) as e:
        raise IncompatibleCheckpointError(
            f"{path}: cannot read the architecture from its state dict ({type(e).__name__}: {e}). The file is "
            "corrupt, or holds a model srgan does not know; use a checkpoint saved by srgan or a registered "
            "architecture's state dict"
        ) from e
    return arch, config


def checked_tensors(state_dict: Mapping[str, Any], *, source: str) -> dict[str, torch.Tensor]:
    """The entries of ``state_dict``, floating tensors as float32.

    Raises:
        CheckpointError: a key is not a string; an entry is not a dense tensor, has fewer bytes of data than its
            shape needs (an expanded view: a tiny file could otherwise claim gigabytes of weights), or holds NaN
            or inf.
    """
    out: dict[str, torch.Tensor] = {}
    floats: list[torch.Tensor] = []
    for k, v in state_dict.items():
        if not isinstance(k, str):
            raise CheckpointError(f"{source}: expected string state-dict keys, got {type(k).__name__} {k!r}")
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(f"{source}: entry {k!r} is a {type(v).__name__}, expected a tensor")
        if v.layout != torch.strided:
            raise CheckpointError(f"{source}: tensor {k!r} has layout {v.layout}, expected a dense tensor")
        needed = v.numel() * v.element_size()
        held = v.untyped_storage().nbytes() - v.storage_offset() * v.element_size()
        if needed > held:
            raise CheckpointError(
                f"{source}: tensor {k!r} of shape {tuple(v.shape)} has {held} bytes of data for its {v.numel()} "
                f"values ({needed} bytes): an expanded or overlapping view, not weights; {_EDITED}"
            )
        if v.is_floating_point():
            v = v.float()
            floats.append(v.reshape(-1))
        out[k] = v
    # One finiteness check over all weights (hundreds of small per-tensor checks cost seconds on a busy CPU); the
    # loop that names the bad tensor runs only when it fails.
    if floats and not torch.isfinite(torch.cat(floats)).all():
        bad = next(k for k, v in out.items() if v.is_floating_point() and not torch.isfinite(v).all())
        raise CheckpointError(f"{source}: tensor {bad!r} contains NaN or inf; the weights are unusable")
    return out


def build_generator(checkpoint: Checkpoint, *, source: str = "checkpoint") -> SRModel:
    """The model of the checkpoint's architecture with its weights, in eval mode, fp32, on CPU.

    The one build path of every architecture: :func:`check_architecture` first compares the state dict's keys and
    shapes with those of the architecture's model (built on the ``meta`` device: no memory), so a config that
    contradicts its weights is refused before anything is allocated; then the registered architecture of
    ``checkpoint.config`` builds the model (a :class:`Generator` for srgan's own checkpoints, a
    :class:`~srgan.models.ClassicSRGANGenerator`, :class:`~srgan.models.MSRResNet`... for the others) and the
    weights are loaded.

    Raises:
        IncompatibleCheckpointError: the state dict does not match the architecture (keys and shapes listed).
    """
    arch = registry.for_config(checkpoint.config)
    check_architecture(checkpoint, source=source)
    model: SRModel = arch.build(checkpoint.config)
    load_weights(model, checkpoint.state_dict, source=source, what=_describe(arch, checkpoint.config))
    return model.eval()


def check_architecture(checkpoint: Checkpoint, *, source: str = "checkpoint") -> None:
    """Check that the checkpoint's state dict has exactly the keys and shapes of its config's model, without
    building that model: the architecture builds it on the ``meta`` device (shapes, no data).

    An architecture whose ``build`` cannot run on the ``meta`` device is skipped here (logged at debug level);
    :func:`build_generator` still checks its weights once the model is built.

    Raises:
        IncompatibleCheckpointError: missing or unexpected keys, or wrong shapes (the first ten of each listed).
    """
    arch = registry.for_config(checkpoint.config)
    try:
        with torch.device("meta"):
            shapes = {k: tuple(v.shape) for k, v in arch.build(checkpoint.config).state_dict().items()}
    except ConfigError:
        raise
    except Exception as e:  # e.g. a third-party build that needs real tensors
        logger.debug("cannot build %r on the meta device (%s); checking its weights after building", arch.name, e)
        return
    check_state_dict(shapes, checkpoint.state_dict, source=source, what=_describe(arch, checkpoint.config))


def _describe(arch: registry.Architecture[Any, Any], config: ModelConfig) -> str:
    return f"{arch.model_class.__name__}({config})"
