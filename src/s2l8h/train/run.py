"""Training, resuming, calibrating and exporting."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from scipy import stats
from torch.utils.data import DataLoader, Dataset

from s2l8h.data.pairs import load_scenes
from s2l8h.data.patches import PatchDataset, QualityFilter
from s2l8h.errors import (
    InputError,
    ModelLoadError,
    OutputExistsError,
    S2L8HWarning,
    TrainingError,
    warn,
)
from s2l8h.models.factory import create_model
from s2l8h.models.harmonizer import Harmonizer, split_output
from s2l8h.models.loading import load_state_dict_strict, save_pretrained
from s2l8h.models.registry import build_network
from s2l8h.train.config import TrainConfig
from s2l8h.train.module import (
    HarmonizerModule,
    PatchDataModule,
    batch_mask,
    batch_tensors,
    make_dataset,
    scene_sources,
)


@dataclass
class TrainResult:
    directory: Path
    best_checkpoint: Path
    last_checkpoint: Path
    best_val_loss: float


def build_model(config: TrainConfig) -> Harmonizer:
    """The model of ``config``: random, or with the weights of ``model.init`` (a release, a
    hub id, or a training checkpoint ``.ckpt`` of the same configuration)."""
    init = config.model.init
    if init and Path(init).suffix == ".ckpt":
        model = create_model(config.model.name, **config.model.overrides)
        load_checkpoint_weights(model, init)
        return model.train()
    # a release loads in eval mode: training mode again (dropout active, if any)
    return create_model(config.model.name, pretrained=init or None,
                        **config.model.overrides).train()


def load_checkpoint_weights(model: Harmonizer, checkpoint: str | os.PathLike[str]) -> None:
    """Load a training checkpoint's network weights into ``model`` (keys must match)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    prefix = "model.network."
    network_state = {key[len(prefix):]: value for key, value in state.items()
                     if key.startswith(prefix)}
    load_state_dict_strict(model.network, network_state, str(checkpoint))


def build_module(config: TrainConfig) -> HarmonizerModule:
    return HarmonizerModule(build_model(config), config.loss, config.optimizer,
                            config.scheduler, config.trainer.max_epochs,
                            denoise_input=config.model.denoise_input)


def train(config: TrainConfig, *, resume: bool | str = False,
          callbacks: list | None = None, progress: bool = True) -> TrainResult:
    """Train per ``config``; checkpoints ``best.ckpt`` (lowest ``val_loss``) and ``last.ckpt``
    go to ``<output.dir>/checkpoints``, TensorBoard logs to ``<output.dir>/logs``.

    ``resume=True`` continues from ``last.ckpt`` (weights, optimizer, scheduler, epoch and
    callback states), or from the checkpoint path given.
    """
    directory = Path(config.output.dir)
    checkpoints = directory / "checkpoints"
    if resume is True:
        ckpt_path: str | None = str(checkpoints / "last.ckpt")
        if not Path(ckpt_path).is_file():
            raise InputError(ckpt_path, "nothing to resume")
    elif resume:
        ckpt_path = str(resume)
    else:
        ckpt_path = None
        if (checkpoints / "last.ckpt").exists():
            raise OutputExistsError(f"{checkpoints}: holds a run already; resume it or "
                                    "choose another output.dir")
    directory.mkdir(parents=True, exist_ok=True)
    record_session(directory, config, ckpt_path)
    (directory / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    L.seed_everything(config.trainer.seed, workers=True, verbose=False)
    module = build_module(config)
    best = ModelCheckpoint(dirpath=checkpoints, filename="best", monitor="val_loss",
                           mode="min", save_top_k=1)
    # Every epoch's end, whatever the validation loss: Lightning's save_last writes last.ckpt
    # only when another checkpoint is saved (here: when val_loss improved), which left a
    # run's last.ckpt, and so --resume and the releases exported from it, at an older epoch.
    latest = ModelCheckpoint(dirpath=checkpoints, filename="last", save_top_k=1,
                             enable_version_counter=False)
    all_callbacks = [best, latest, *(callbacks or [])]
    if config.trainer.patience > 0:
        all_callbacks.append(EarlyStopping(monitor="val_loss", patience=config.trainer.patience))
    trainer = L.Trainer(
        default_root_dir=directory, max_epochs=config.trainer.max_epochs,
        accelerator=config.trainer.accelerator, devices=config.trainer.devices,
        strategy=config.trainer.strategy, num_nodes=config.trainer.num_nodes,
        precision=config.trainer.precision, log_every_n_steps=config.trainer.log_every_n_steps,
        limit_train_batches=config.trainer.limit_train_batches,
        limit_val_batches=config.trainer.limit_val_batches,
        gradient_clip_val=config.trainer.gradient_clip_val or None,
        deterministic=config.trainer.deterministic, callbacks=all_callbacks,
        logger=TensorBoardLogger(directory, name="logs"), enable_progress_bar=progress,
        enable_model_summary=False)
    datamodule = PatchDataModule(config.data, config.trainer.seed, module.model.convention,
                                 noise_free_twin=bool(module.loss.noise_terms))
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    except SystemExit as error:
        # Lightning's exit after its graceful shutdown on Ctrl-C (code 1); other exits, such
        # as a termination signal's 128 + n, keep their code for schedulers.
        if not trainer.interrupted or error.code != 1:
            raise
        last = checkpoints / "last.ckpt"
        saved = f"{last} holds the last finished epoch; continue with --resume" \
            if last.exists() else "no epoch finished, so there is nothing to resume"
        raise TrainingError(f"interrupted in epoch {trainer.current_epoch}: {saved}") from None
    return TrainResult(directory, Path(best.best_model_path), checkpoints / "last.ckpt",
                       float(best.best_model_score) if best.best_model_score is not None
                       else math.nan)


#: A run folder's sessions: one entry per start or resume (``started``, ``resumed_from``,
#: ``config_changes``: ``{key: [before, after]}`` against the previous session's config).
SESSIONS_NAME = "sessions.json"


def _flat(values: dict, prefix: str = "") -> dict[str, object]:
    """``{"a.b": value}`` of a nested dict."""
    flat: dict[str, object] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def record_session(directory: Path, config: TrainConfig, resumed_from: str | None) -> None:
    """Append this start or resume to ``directory``'s :data:`SESSIONS_NAME`; on a resume,
    warn about the configuration's changes against the run's ``config.json``."""
    changes: dict[str, list] = {}
    earlier = directory / "config.json"
    if resumed_from is not None and earlier.is_file():
        before, after = _flat(json.loads(earlier.read_text())), _flat(config.to_dict())
        changes = {key: [before.get(key), after.get(key)] for key in sorted({*before, *after})
                   if before.get(key) != after.get(key)}
        if changes:
            warn(f"{directory}: resumed with a changed configuration: " + "; ".join(
                f"{key} {old!r} -> {new!r}" for key, (old, new) in changes.items()),
                S2L8HWarning)
    path = directory / SESSIONS_NAME
    sessions = json.loads(path.read_text()) if path.is_file() and resumed_from else []
    sessions.append({"started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                     "resumed_from": resumed_from, "config_changes": changes})
    path.write_text(json.dumps(sessions, indent=2) + "\n")


def model_from_checkpoint(config: TrainConfig, checkpoint: str | os.PathLike[str]
                          ) -> Harmonizer:
    """The model of ``config`` with the weights of a training checkpoint."""
    model = create_model(config.model.name, **config.model.overrides)
    load_checkpoint_weights(model, checkpoint)
    model.provenance = {"weights": f"trained by s2l8h train, checkpoint {checkpoint}"}
    return model.eval()


@torch.no_grad()
def predict_split(model: Harmonizer, dataset_dir: str | os.PathLike[str] | Dataset,
                  split: str = "Validation", quality: QualityFilter = QualityFilter(),
                  batch_size: int = 16
                  ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(prediction, variance or None, target) over all samples of a split (a patch folder's
    split, or a dataset), flattened per band (6, N); pixels outside a sample's ``valid``
    mask are left out."""
    dataset = dataset_dir if isinstance(dataset_dir, Dataset) else \
        PatchDataset(dataset_dir, split, quality=quality)
    means, variances, targets = [], [], []
    for batch in DataLoader(dataset, batch_size=batch_size):
        multispectral, pan, target = batch_tensors(batch)
        mean, variance = split_output(model(multispectral, pan))
        mask = batch_mask(batch)
        keep = slice(None) if mask is None else mask[:, 0].reshape(-1)

        def flat(values: torch.Tensor, keep=keep) -> torch.Tensor:
            return values.transpose(0, 1).reshape(values.shape[1], -1)[:, keep]

        means.append(flat(mean))
        targets.append(flat(target))
        if variance is not None:
            variances.append(flat(variance))
    return (torch.cat(means, 1).numpy(), torch.cat(variances, 1).numpy() if variances else None,
            torch.cat(targets, 1).numpy())


def calibrate_variance(model: Harmonizer, dataset_dir: str | os.PathLike[str] | Dataset,
                       split: str = "Validation") -> float:
    """Fit the factor on the variance head so that the central 68 % Gaussian interval covers
    68 % of the ``split`` pixels; return it (and set it in the model)."""
    if not model.has_variance_head or not hasattr(model.config, "variance_scale"):
        raise ValueError("calibration needs a lite model with a variance head")
    base = dataclasses.replace(model.config, variance_scale=1.0)
    uncalibrated = Harmonizer(build_network(model.architecture, base.to_dict()),
                              model.convention, model.architecture)
    uncalibrated.network.load_state_dict(model.network.state_dict())
    mean, variance, target = predict_split(uncalibrated.eval(), dataset_dir, split)
    z = np.abs(mean - target) / np.sqrt(variance)
    factor = float(np.quantile(z, 0.68) / stats.norm.ppf(0.84)) ** 2
    model.network.config = dataclasses.replace(base, variance_scale=factor)
    return factor


def export(config: TrainConfig | None, checkpoint: str | os.PathLike[str],
           folder: str | os.PathLike[str], *, calibrate: bool = True,
           card: dict | None = None, overwrite: bool = False) -> Path:
    """Write the checkpoint's model in the release format with a model card (README.md).

    Without ``config`` the model is rebuilt from the checkpoint alone
    (:func:`export_checkpoint`: no data, so no calibration and no measurements)."""
    if config is None:
        return export_checkpoint(checkpoint, folder, card=card, overwrite=overwrite)
    model = model_from_checkpoint(config, checkpoint)
    model.name = config.output.name or config.model.name
    facts: dict = {"checkpoint": str(checkpoint), "training_config": config.to_dict(),
                   **(card or {})}
    sessions = Path(checkpoint).parent.parent / SESSIONS_NAME
    if sessions.is_file():
        facts["sessions"] = json.loads(sessions.read_text())
    dataset_settings = Path(config.data.dataset) / "dataset.json"
    if dataset_settings.is_file() and "data" not in facts:
        settings = json.loads(dataset_settings.read_text())
        facts["data"] = (
            f"Patches of {settings['size']} x {settings['size']} Landsat pixels (stride "
            f"{settings['stride']}) of Landsat-8 simulated from the Sentinel-2 scene "
            f"`{settings['sentinel2']}` (HLS bandpass {settings['platform']}, MTF-matched PSF, "
            f"noise {settings['noise_std']}, sun elevation {settings['sun_elevation']}°); "
            f"Train/Validation/Test are the top {settings['fractions'][0]:.0%}, the next "
            f"{settings['fractions'][1]:.0%} and the bottom {settings['fractions'][2]:.0%} of "
            f"the scene's rows. Patches passing the quality filter: "
            f"{settings['counts_passing_quality']}.")
    if config.data.scenes and "data" not in facts:
        facts["data"] = simulated_data_description(config)
    scenes = load_scenes(scene_sources(config.data)) if config.data.scenes else None
    splits: dict[str, Dataset] = {}
    for split in ("Validation", "Test"):
        try:
            splits[split] = make_dataset(config.data, split, config.trainer.seed, scenes,
                                         model.convention)
        except InputError:  # a split no scene has rows for
            continue
    if calibrate and model.has_variance_head and hasattr(model.config, "variance_scale"):
        facts["variance_scale"] = calibrate_variance(model, splits["Validation"])
    for split, dataset in splits.items():
        mean, variance, target = predict_split(model, dataset)
        error = mean - target
        entry = {"psnr": float(10 * np.log10(1 / np.mean(error**2))),
                 "pixels": int(error.shape[1])}
        if variance is not None:
            sigma = np.sqrt(variance)
            entry["coverage_68"] = float(np.mean(np.abs(error) <= stats.norm.ppf(0.84) * sigma))
            entry["coverage_95"] = float(np.mean(np.abs(error) <= 1.96 * sigma))
        facts[f"{split.lower()}_patches"] = entry
    folder = save_pretrained(model, folder, provenance={"training": facts},
                             overwrite=overwrite)
    write_model_card(folder, model, facts)
    return folder


def simulated_data_description(config: TrainConfig) -> str:
    """The model card's account of pairs simulated on the fly."""
    lines = [
        f"Pairs simulated on the fly from {len(config.data.scenes)} Sentinel-2 scene(s): "
        f"windows of {config.data.patch_size} x {config.data.patch_size} Landsat pixels, "
        f"{config.data.train_samples} random draws per epoch, each with a random "
        f"degradation ({config.data.degradation}: `s2l8h.data.simulate.TRAINING_RANGES`: "
        "OLI noise x0.5-10, band and pan PSF widths x0.7-1.4, band/truth shift N(0, 5 m) "
        "clipped to 15 m, pan/band shift up to 7.5 m, per-band gain 1 +/- 0.02 and offset "
        "+/- 0.01, S2A/S2B/S2C bandpass, Level-1 pan with sun elevation 20-70 deg, path "
        "reflectance 0-0.08 and transmittance 0.8-1.0, pan gaps on 10 % of draws, 10 % clean "
        f"draws); validation: {config.data.val_samples} fixed draws. Train / Validation / "
        "Test are disjoint bands of rows of each scene (top down):", ""]
    for scene in config.data.scenes:
        fractions = " / ".join(f"{share:.0%}" for share in scene.fractions)
        lines.append(f"- `{scene.path}` ({scene.radiometry or 'radiometry not stated'}; "
                     f"{scene.source or 'source not stated'}): {fractions}")
    if config.data.degradation_overrides:
        changed = ", ".join(f"`{key}` = {value}" for key, value in
                            config.data.degradation_overrides.items())
        lines += ["", f"Degradation ranges changed in this run (`DegradationRanges` fields): "
                  f"{changed}."]
    if config.data.real_scenes:
        lines += ["", f"Mixed in: reduced-resolution (Wald) pairs of real Landsat, "
                  f"{config.data.real_samples} random windows per epoch and "
                  f"{config.data.real_val_samples} fixed validation windows "
                  "(`s2l8h.data.real`: the real 30 m bands and 15 m pan degraded 3x, the real "
                  "30 m bands in Sentinel-2 radiometry by the inverse HLS bandpass as the "
                  "target, losses over clear pixels only). Train / Validation / Test rows "
                  "(top down; the Test rows are never trained on):", ""]
        for real in config.data.real_scenes:
            fractions = " / ".join(f"{share:.0%}" for share in real.fractions)
            lines.append(f"- `{real.path}` ({real.radiometry or 'radiometry not stated'}; "
                         f"{real.source or 'source not stated'}): {fractions}")
    return "\n".join(lines)


def write_model_card(folder: Path, model: Harmonizer, facts: dict) -> Path:
    config = facts["training_config"]
    terms = ", ".join(f"{term['weight']}×{term['name']}" for term in config["loss"])
    lines = [
        f"# {model.name}", "",
        f"Architecture `{model.architecture}`: "
        + ", ".join(f"{k}={v}" for k, v in model.config.to_dict().items()) + ".",
        f"Input convention: {model.convention.describe()}.", "",
        "## Training data and protocol", "",
        facts.get("data", f"Patch dataset `{config['data']['dataset']}`."), "",
        f"Loss: {terms}; optimizer "
        f"{config['optimizer']['name']} lr {config['optimizer']['lr']}; scheduler "
        f"{config['scheduler']['name']}; up to {config['trainer']['max_epochs']} epochs, "
        f"batch {config['data']['batch_size']}, seed {config['trainer']['seed']}; best "
        "validation checkpoint.", "",
        "## Measured", "",
    ]
    for split in ("validation", "test"):
        entry = facts.get(f"{split}_patches")
        if entry:
            lines.append(f"- {split} patches: " + ", ".join(
                f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                for k, v in entry.items()))
    if "variance_scale" in facts:
        lines.append(f"- variance head calibrated on the validation split: factor "
                     f"{facts['variance_scale']:.4f}")
    if "command" in facts:
        commands = facts["command"] if isinstance(facts["command"], list) else \
            [facts["command"]]
        lines += ["", "## Reproduce", "", "```bash", *commands, "```"]
    resumes = facts.get("sessions", [])[1:]
    if resumes:
        lines += ["", f"Trained in {len(resumes) + 1} sessions: resumed {len(resumes)} time(s) "
                  "with `--resume` from the run's last checkpoint (a resume re-seeds, so the "
                  "weights differ slightly from an uninterrupted run's)."]
        lines += [f"- resumed {entry['started']}: configuration changed: " + "; ".join(
            f"{key} {old!r} → {new!r}" for key, (old, new) in entry["config_changes"].items())
            for entry in resumes if entry.get("config_changes")]
    path = folder / "README.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def export_checkpoint(checkpoint: str | os.PathLike[str], folder: str | os.PathLike[str], *,
                      card: dict | None = None, overwrite: bool = False) -> Path:
    """Write a checkpoint's model in the release format, rebuilt from the checkpoint alone
    (its hyperparameters name the architecture, config and convention), with a short model
    card; the variance head is not calibrated (that needs the training data)."""
    import warnings

    from s2l8h.models.loading import load_model, read_weights

    if read_weights(checkpoint)[1] is None:
        raise ModelLoadError(f"{checkpoint}: the checkpoint does not describe its model "
                             "(not written by s2l8h train, or before it saved "
                             "hyperparameters); pass its training configuration (--config)")
    with warnings.catch_warnings():  # the card says the head is not calibrated
        warnings.filterwarnings("ignore", ".*a training checkpoint, whose variance head",
                                S2L8HWarning)
        model = load_model(checkpoint)
    facts = {"checkpoint": str(checkpoint), **(card or {})}
    model.provenance = {"weights": f"trained by s2l8h train, checkpoint {checkpoint}"}
    folder = save_pretrained(model, folder, provenance={"training": facts},
                             overwrite=overwrite)
    lines = [f"# {model.name}", "",
             f"Architecture `{model.architecture}`: "
             + ", ".join(f"{k}={v}" for k, v in model.config.to_dict().items()) + ".",
             f"Input convention: {model.convention.describe()}.", "",
             f"Exported from the checkpoint `{checkpoint}` alone: no training configuration, "
             "so no measurements here and the variance head (if any) is not calibrated."]
    (folder / "README.md").write_text("\n".join(lines) + "\n")
    return folder
