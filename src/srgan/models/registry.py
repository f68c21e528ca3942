"""The architectures srgan knows, each described once as an :class:`Architecture` value.

Everything that depends on a model's architecture asks this registry: which architecture a state dict holds and
its hyperparameters (other projects' files load unchanged), the config stored in srgan checkpoints, building the
model, the receptive radius that makes tiling seamless, the memory a tile needs, the conv -> BatchNorm pairs
folded for inference, and whether the model can be exported.

Built-in architectures, by the name srgan checkpoint files store as ``"arch"``:

* ``"srgan"``: :class:`~srgan.models.Generator` (:mod:`srgan.models.generator`);
* ``"srgan-classic"``: :class:`~srgan.models.ClassicSRGANGenerator` (:mod:`srgan.models.classic`);
* ``"msrresnet"``: BasicSR's :class:`~srgan.models.MSRResNet` (:mod:`srgan.models.msrresnet`);
* ``"discriminator"``: :class:`~srgan.models.Discriminator` (:mod:`srgan.models.discriminator`).

Adding a built-in architecture takes one module that declares ``ARCHITECTURE = Architecture(...)`` and its name in
``_BUILTINS``; code outside srgan calls :func:`register` instead. A generator is then loaded from its files,
upscales (tiled), and exports like srgan's own.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, Literal, Protocol, TypeVar, runtime_checkable

import torch
from torch import nn

from .._state_dict import canonical_state_dict, describe_state_dict
from ..errors import ConfigError, IncompatibleCheckpointError

__all__ = [
    "Architecture",
    "ModelConfig",
    "SRModel",
    "StageSplit",
    "TwoStageModel",
    "architectures",
    "detect",
    "for_config",
    "for_model",
    "get",
    "incompatible",
    "register",
    "required_shape",
    "unregister",
]

ConfigT = TypeVar("ConfigT")
ModelT = TypeVar("ModelT", bound=nn.Module)
Kind = Literal["generator", "discriminator"]

_BUILTINS: Final = ("generator", "classic", "msrresnet", "discriminator")
"""Modules of :mod:`srgan.models` that declare the built-in architectures (``ARCHITECTURE``), in detection order."""


@runtime_checkable
class ModelConfig(Protocol):
    """The architecture hyperparameters of a generator (its ``config`` attribute): a frozen dataclass with at least
    ``scale`` and a ``to_dict()`` whose result its ``from_dict`` reads back."""

    @property
    def scale(self) -> int: ...

    def to_dict(self) -> dict[str, Any]: ...


class SRModel(nn.Module):
    """Base class of srgan's generators: (N, 3, H, W) float RGB in [0, 1] -> (N, 3, scale*H, scale*W).

    Any module of a registered generator architecture runs in :class:`srgan.SRGAN`, subclass or not, as long as it
    has a :attr:`config` (its :class:`ModelConfig`) and a :attr:`scale`; subclassing gives them, typed.
    """

    config: ModelConfig

    @property
    def scale(self) -> int:
        """The upscaling factor."""
        return self.config.scale


@runtime_checkable
class TwoStageModel(Protocol):
    """A generator whose forward is ``reconstruct(features(x))``: see :class:`StageSplit`."""

    def features(self, x: torch.Tensor) -> torch.Tensor: ...

    def reconstruct(self, features: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class StageSplit:
    """How a generator runs in two stages in tiled inference: ``model.features(x)`` (N, 3, H, W) -> (N,
    ``feature_channels``, H, W) at input resolution, then ``model.reconstruct(features)`` -> (N, 3, sH, sW).

    The trunk (``features``) holds most of the receptive radius and needs little memory per pixel; the upsampling
    layers (``reconstruct``) the opposite. So the trunk runs in large tiles (little context recomputed) and the
    upsampling layers in small pieces of each tile's own output, with ``reconstruct_radius`` pixels of context.

    Attributes:
        features_radius: receptive radius of ``features`` (input pixels, rounded up).
        reconstruct_radius: receptive radius of ``reconstruct`` in input pixels (rounded up); the two add up to at
            least the architecture's ``receptive_radius``.
        features_values_per_pixel: peak activation values alive per input pixel while ``features`` runs.
        feature_channels: channels of the features (kept while ``reconstruct`` runs on them).
        reconstruct_values_per_pixel: peak activation values per input pixel while ``reconstruct`` runs.
    """

    features_radius: int
    reconstruct_radius: int
    features_values_per_pixel: float
    feature_channels: int
    reconstruct_values_per_pixel: float


@dataclass(frozen=True)
class Architecture(Generic[ConfigT, ModelT]):
    """Everything srgan needs to know about one architecture.

    Attributes:
        name: the name srgan checkpoints store as ``"arch"`` (never change it: existing files name it).
        model_class: the ``nn.Module`` class (its subclasses belong to the architecture too).
        config_class: the class of its hyperparameters (the model's ``config`` attribute), a frozen dataclass.
        summary: what its state dicts look like, for error messages: ``"BasicSR's MSRResNet: conv_first.weight,
            body.0.conv1.weight, ..."``.
        detect: whether a state dict (unwrapped, see :func:`srgan._state_dict.canonical_state_dict`) has this
            architecture's keys. Cheap and specific; a matching but inconsistent file fails in
            ``config_from_state_dict`` with the reason.
        config_from_state_dict: the hyperparameters read from the keys and tensor shapes; raises
            :class:`~srgan.errors.IncompatibleCheckpointError` (see :func:`incompatible`) when they are inconsistent.
        config_to_dict: the config as JSON-able data, stored in checkpoints.
        config_from_dict: the inverse; raises :class:`~srgan.errors.ConfigError` on unknown or invalid keys.
        build: a freshly initialised model of the given config.
        receptive_radius: how many input pixels on each side influence one output pixel (rounded up): the overlap
            of tiles, so that tiled output equals untiled output. Required for generators.
        activation_values_per_pixel: the peak number of activation values alive per input pixel during inference
            (times the bytes of the dtype: the memory a tile needs). Required for generators.
        conv_bn_pairs: where the model's BatchNorms follow a convolution directly, as ``(parent, conv_name,
            bn_name)`` children of ``parent``; :func:`srgan._fuse.fold_batchnorm` folds each BN into its conv for
            inference. None: nothing to fold.
        inference_rewrite: rewrites an eval-mode copy of a model, in place and after BatchNorm folding, into a graph
            with the same output that runs faster (:func:`srgan._fuse.prepare_for_inference`); its forward,
            ``features`` and ``reconstruct`` keep working. None: no rewrite.
        stages: for generators whose model is a :class:`TwoStageModel`, how it splits (:class:`StageSplit`): tiled
            inference then runs the trunk and the upsampling layers in differently sized tiles (less recomputed
            context, same output). None: the whole model runs on each tile.
        exportable: whether the model traces to TorchScript and ONNX (its forward has no shape-dependent control
            flow).
        kind: ``"generator"`` (runs in :class:`~srgan.SRGAN`, loads from generator checkpoints) or
            ``"discriminator"``.
    """

    name: str
    model_class: type[ModelT]
    config_class: type[ConfigT]
    summary: str
    detect: Callable[[Mapping[str, Any]], bool]
    config_from_state_dict: Callable[[Mapping[str, Any]], ConfigT]
    config_to_dict: Callable[[ConfigT], dict[str, Any]]
    config_from_dict: Callable[[dict[str, Any]], ConfigT]
    build: Callable[[ConfigT], ModelT]
    receptive_radius: Callable[[ConfigT], int] | None = None
    activation_values_per_pixel: Callable[[ConfigT], float] | None = None
    conv_bn_pairs: Callable[[ModelT], Iterable[tuple[nn.Module, str, str]]] | None = None
    inference_rewrite: Callable[[ModelT], None] | None = None
    stages: Callable[[ConfigT], StageSplit] | None = None
    exportable: bool = True
    kind: Kind = "generator"

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("an Architecture needs a name")
        if self.kind not in ("generator", "discriminator"):
            raise ConfigError(f"kind must be 'generator' or 'discriminator', got {self.kind!r}")
        if self.kind == "generator" and (self.receptive_radius is None or self.activation_values_per_pixel is None):
            raise ConfigError(
                f"generator architecture {self.name!r} needs receptive_radius and activation_values_per_pixel "
                "(tiled inference depends on them)"
            )

    @property
    def is_generator(self) -> bool:
        return self.kind == "generator"


_registry: dict[str, Architecture[Any, Any]] = {}
_lock = threading.RLock()
_builtins_loaded = False


def _all() -> dict[str, Architecture[Any, Any]]:
    """The registry, with the built-in architectures first (imported on first use: they import this module)."""
    global _builtins_loaded
    with _lock:
        if not _builtins_loaded:
            for module in _BUILTINS:
                _add(importlib.import_module(f"{__package__}.{module}").ARCHITECTURE)
            _builtins_loaded = True
        return _registry


def _add(arch: Architecture[Any, Any]) -> None:
    if not isinstance(arch, Architecture):
        raise ConfigError(f"expected an srgan.models.registry.Architecture, got {type(arch).__name__}")
    for other in _registry.values():
        same = {
            "name": other.name == arch.name,
            "model class": other.model_class is arch.model_class,
            "config class": other.config_class is arch.config_class,
        }
        clash = next((what for what, equal in same.items() if equal), None)
        if clash is not None:
            raise ConfigError(
                f"architecture {arch.name!r} has the same {clash} as the registered {other.name!r}; "
                "unregister that one first"
            )
    _registry[arch.name] = arch


def register(arch: Architecture[ConfigT, ModelT]) -> Architecture[ConfigT, ModelT]:
    """Add ``arch`` (after every architecture registered before it, for :func:`detect`); returns it.

    Raises:
        ConfigError: its name, model class or config class is already registered.
    """
    with _lock:
        _all()
        _add(arch)
    return arch


def unregister(name: str) -> Architecture[Any, Any]:
    """Remove the architecture called ``name`` (e.g. one a test registered); returns it."""
    with _lock:
        arch = get(name)
        del _registry[name]
    return arch


def architectures(kind: Kind | None = None) -> tuple[Architecture[Any, Any], ...]:
    """The registered architectures (of one ``kind``, or all), in detection order: built-ins first."""
    return tuple(a for a in _all().values() if kind is None or a.kind == kind)


def get(name: str) -> Architecture[Any, Any]:
    """The architecture called ``name``.

    Raises:
        ConfigError: no such architecture (the message lists the known ones).
    """
    arch = _all().get(name)
    if arch is None:
        raise ConfigError(
            f"unknown architecture {name!r} (this srgan knows {', '.join(_all())}); it may come from a newer srgan: "
            "upgrade srgan (pip install -U srgan), or declare it and add it with srgan.models.registry.register"
        )
    return arch


def _by_class(obj: object, attr: Literal["model_class", "config_class"]) -> Architecture[Any, Any] | None:
    owners = {getattr(a, attr): a for a in _all().values()}
    return next((owners[c] for c in type(obj).__mro__ if c in owners), None)


def for_model(model: object) -> Architecture[Any, Any]:
    """The architecture of ``model`` (an instance of a registered model class or of a subclass).

    Raises:
        ConfigError: not a model of a registered architecture.
    """
    arch = _by_class(model, "model_class")
    if arch is None:
        known = ", ".join(a.model_class.__name__ for a in _all().values())
        raise ConfigError(
            f"{type(model).__name__} is not a model of a registered architecture ({known}); declare its "
            "Architecture and add it with srgan.models.registry.register"
        )
    return arch


def for_config(config: object) -> Architecture[Any, Any]:
    """The architecture whose config class ``config`` is an instance of.

    Raises:
        ConfigError: not the config of a registered architecture.
    """
    arch = _by_class(config, "config_class")
    if arch is None:
        raise ConfigError(f"not the config of a registered architecture: {config!r}")
    return arch


def detect(state_dict: Mapping[str, Any]) -> Architecture[Any, Any]:
    """The first registered architecture whose ``detect`` accepts ``state_dict`` (unwrapped first).

    Raises:
        IncompatibleCheckpointError: no architecture matches; the message lists the entry count, the first keys
            and shapes, and the layouts srgan loads.
    """
    state = canonical_state_dict(state_dict)
    for arch in _all().values():
        if arch.detect(state):
            return arch
    raise incompatible(state, "unrecognised checkpoint layout")


def incompatible(state_dict: Mapping[str, Any], why: str) -> IncompatibleCheckpointError:
    """The error for a state dict srgan cannot load: ``why``, what the file holds, and what srgan loads instead."""
    layouts = ", ".join(f"{a.name!r} ({a.summary})" for a in architectures("generator"))
    return IncompatibleCheckpointError(
        f"{why}. The file holds {describe_state_dict(state_dict)}. srgan loads its own checkpoints and plain state "
        f"dicts of these generators: {layouts}; also wrapped as {{'params': ...}} or {{'params_ema': ...}} (BasicSR) "
        "or with a 'module.' prefix on every key. Convert other checkpoints to one of these"
    )


def required_shape(state_dict: Mapping[str, Any], key: str, what: str) -> tuple[int, ...]:
    """The shape of the tensor ``state_dict[key]``; :func:`incompatible` (``"{what}: no tensor {key!r}"``) if none.

    A helper for ``config_from_state_dict`` functions.
    """
    value = state_dict.get(key)
    if not isinstance(value, torch.Tensor):
        raise incompatible(state_dict, f"{what}: no tensor {key!r}")
    return tuple(value.shape)
