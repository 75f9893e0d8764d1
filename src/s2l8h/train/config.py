"""Training configuration: a YAML file validated on load, with ``key.sub=value`` overrides.

Example (``configs/lite-virginia-sim.yaml``)::

    data: {dataset: runs/virginia-patches, batch_size: 16}
    model: {name: lite, overrides: {width: 48}}
    loss: [{name: gaussian_nll}, {name: l1, weight: 0.5}]
    optimizer: {name: adam, lr: 0.001}
    scheduler: {name: cosine}
    trainer: {max_epochs: 40, seed: 0, patience: 10}
    output: {dir: runs/lite}
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from s2l8h.errors import ConfigError
from s2l8h.train.losses import LossTerm


def _check_scene(path: str, fractions: list[float], what: str) -> None:
    """A scene entry needs a path and Train/Validation/Test shares summing to 1."""
    if not path:
        raise ValueError(f"{what} needs a path")
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be three shares summing to 1, got {fractions}")


@dataclass
class SceneConfig:
    """A Sentinel-2 scene for pairs simulated on the fly (see ``s2l8h.data.pairs``)."""

    path: str = ""
    offset: float = 0.0
    fractions: list[float] = field(default_factory=lambda: [0.6, 0.1, 0.3])
    weight: float = 1.0
    radiometry: str = ""  # e.g. "L1C TOA" or "L2A surface reflectance"
    source: str = ""  # provenance

    def __post_init__(self) -> None:
        _check_scene(self.path, self.fractions, "a scene")


@dataclass
class RealSceneConfig:
    """A real Landsat scene for reduced-resolution (Wald) training pairs (see
    ``s2l8h.data.real``)."""

    path: str = ""
    toa: bool = False  # a Level-1 scene, read as TOA reflectance
    fractions: list[float] = field(default_factory=lambda: [0.55, 0.17, 0.28])
    radiometry: str = ""  # e.g. "L1 TOA reflectance" or "L2 surface reflectance"
    source: str = ""  # provenance

    def __post_init__(self) -> None:
        _check_scene(self.path, self.fractions, "a real scene")


@dataclass
class DataConfig:
    """Either ``dataset`` (a patch folder on disk) or ``scenes`` (Sentinel-2 scenes from
    which pairs are simulated on the fly, each sample with a random degradation)."""

    dataset: str = ""
    scenes: list[SceneConfig] = field(default_factory=list)
    patch_size: int = 32  # 30 m pixels, simulated pairs
    train_samples: int = 2048  # per epoch, simulated pairs
    val_samples: int = 256  # fixed draws, simulated pairs
    degradation: str = "training"  # training (random ranges) | clean
    degradation_overrides: dict[str, Any] = field(default_factory=dict)  # DegradationRanges
    real_scenes: list[RealSceneConfig] = field(default_factory=list)  # Wald pairs, mixed in
    real_samples: int = 512  # per epoch, real Wald pairs (with real_scenes)
    real_val_samples: int = 128  # fixed draws, real Wald pairs (with real_scenes)
    batch_size: int = 16
    num_workers: int = 0
    augment: bool = True
    min_ssim: float = 0.81
    min_psnr: float = 22.0

    def __post_init__(self) -> None:
        if self.degradation not in ("training", "clean"):
            raise ValueError(f"degradation must be training or clean, got "
                             f"{self.degradation!r}")
        for name in ("batch_size", "patch_size", "train_samples", "val_samples",
                     "real_samples", "real_val_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be 1 or more, got {getattr(self, name)}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be 0 or more, got {self.num_workers}")


@dataclass
class ModelConfig:
    name: str = "lite"
    overrides: dict[str, Any] = field(default_factory=dict)
    init: str = ""  # weights to start from (path, name or hub id); empty: random
    # The networks see the bands and the pan after harmonize's input noise filter
    # (s2l8h.inference.denoise.filter_bands and filter_pan), in training and validation.
    denoise_input: bool = False


@dataclass
class OptimizerConfig:
    name: str = "adam"  # adam | adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lr) and self.lr >= 0):
            raise ValueError(f"lr must be 0 or more, got {self.lr}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be 0 or more, got {self.weight_decay}")


@dataclass
class SchedulerConfig:
    name: str = "none"  # none | cosine | step | plateau
    step_size: int = 10
    gamma: float = 0.5
    min_lr: float = 1e-6
    t_max: int = 0  # cosine: period in epochs; 0 = trainer.max_epochs


@dataclass
class TrainerConfig:
    max_epochs: int = 50
    seed: int = 0
    patience: int = 0  # early stopping on val_loss; 0 = off
    accelerator: str = "auto"
    devices: Any = 1
    strategy: str = "auto"  # e.g. ddp for several GPUs or nodes
    num_nodes: int = 1
    precision: str = "32-true"
    log_every_n_steps: int = 10
    limit_train_batches: float = 1.0
    limit_val_batches: float = 1.0
    gradient_clip_val: float = 0.0
    deterministic: bool = False

    def __post_init__(self) -> None:
        if self.max_epochs < 1:
            raise ValueError(f"max_epochs must be 1 or more, got {self.max_epochs}")
        if self.patience < 0:
            raise ValueError(f"patience must be 0 or more (0: off), got {self.patience}")


@dataclass
class OutputConfig:
    dir: str = "runs/s2l8h"
    name: str = ""  # release name written into the exported model


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: list[LossTerm] = field(default_factory=lambda: [LossTerm("l1")])
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_type(value: Any, annotation: Any, where: str) -> Any:
    if annotation is Any:
        return value
    origin = typing.get_origin(annotation)
    if origin in (list, typing.List):  # noqa: UP006
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(annotation)
        return [_check_type(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (dict, typing.Dict):  # noqa: UP006
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        return value
    if dataclasses.is_dataclass(annotation):
        return _build(annotation, value, where)
    if annotation is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if annotation is int and isinstance(value, bool):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if not isinstance(value, annotation):
        raise ConfigError(f"{where}: expected {annotation.__name__}, got {value!r}")
    return value


def _build(cls: type, values: Any, where: str) -> Any:
    if isinstance(values, cls):
        return values
    def at(text: str) -> str:  # the section's path, where there is one
        return f"{where}: {text}" if where else text

    if not isinstance(values, dict):
        raise ConfigError(at(f"expected a mapping, got {values!r}"))
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(at(f"unknown key(s) {unknown}; known: {sorted(known)}"))
    kwargs = {name: _check_type(value, hints[name], f"{where}.{name}".lstrip("."))
              for name, value in values.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(at(str(error))) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (plain YAML keeps
    the last one silently, so half of a section would be ignored)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode,
                              deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"the key {key!r} is given twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 _construct_unique_mapping)


def _parse_value(text: str) -> Any:
    """YAML, with numbers such as ``2e-4`` (a string to YAML 1.1) read as numbers."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        for number in (int, float):
            try:
                return number(value)
            except ValueError:
                continue
    return value


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` strings (values parsed as YAML) to a nested dict."""
    for override in overrides:
        if "=" not in override:
            raise ConfigError(f"override {override!r} is not key=value")
        key, text = override.split("=", 1)
        node = values
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {override!r}: {part} is not a section")
        node[parts[-1]] = _parse_value(text)
    return values


def load_config(path: str | os.PathLike[str] | None = None,
                overrides: list[str] | None = None) -> TrainConfig:
    """Read, override and validate a configuration; errors name the file and the key."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            values = yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}  # a SafeLoader
        except (OSError, yaml.YAMLError) as error:
            raise ConfigError(f"{path}: cannot read the configuration ({error})") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: the configuration must be a mapping")
    origin = str(path or "config") + (f" with --set {' '.join(overrides)}" if overrides else "")
    values = apply_overrides(values, overrides or [])
    try:
        config = _build(TrainConfig, values, "")
    except ConfigError as error:
        raise ConfigError(f"{origin}: {error}") from None
    if config.data.real_scenes and not config.data.scenes:
        raise ConfigError(f"{origin}: data.real_scenes are mixed into pairs "
                          "simulated from data.scenes; give data.scenes too")
    if not config.data.dataset and not config.data.scenes:
        raise ConfigError(f"{origin}: data.dataset is required (a patch folder), "
                          "or data.scenes (Sentinel-2 scenes to simulate pairs from)")
    if config.data.dataset and config.data.scenes:
        raise ConfigError(f"{origin}: give data.dataset or data.scenes, not both")
    return config
