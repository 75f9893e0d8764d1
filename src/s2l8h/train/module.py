"""Lightning module and data module for training a harmonizer on patch datasets."""

from __future__ import annotations

import dataclasses

import lightning as L
import numpy as np
import torch
from matplotlib.figure import Figure
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from s2l8h.data.pairs import SceneSource, SimulatedPairs, load_scenes
from s2l8h.data.patches import PatchDataset, QualityFilter
from s2l8h.data.real import RealSource, RealWaldPairs
from s2l8h.data.simulate import TRAINING_RANGES
from s2l8h.data.transforms import RandomDihedral
from s2l8h.errors import ConfigError, InputError, TrainingError
from s2l8h.inference.denoise import filter_bands, filter_pan
from s2l8h.models.convention import InputConvention
from s2l8h.models.harmonizer import Harmonizer, split_output
from s2l8h.train.config import DataConfig, OptimizerConfig, SchedulerConfig
from s2l8h.train.losses import LossTerm, WeightedLoss, flat_noise_gain, masked_mean, noise_penalty


def scene_sources(config: DataConfig) -> list[SceneSource]:
    return [SceneSource(scene.path, scene.offset, tuple(scene.fractions), scene.weight,
                        scene.radiometry, scene.source) for scene in config.scenes]


def real_sources(config: DataConfig) -> list[RealSource]:
    return [RealSource(scene.path, scene.toa, tuple(scene.fractions), scene.radiometry,
                       scene.source) for scene in config.real_scenes]


def make_dataset(config: DataConfig, split: str, seed: int = 0,
                 scenes: list | None = None, convention: InputConvention | None = None,
                 noise_free_twin: bool = False) -> Dataset:
    """The dataset of ``split``: patches on disk, or pairs simulated from ``config.scenes``
    (random draws for Train; fixed draws, ``val_samples`` of them, otherwise), joined by
    reduced-resolution pairs of ``config.real_scenes`` (``real_samples`` /
    ``real_val_samples``; pan in ``convention``) where given. ``noise_free_twin``: the
    samples also hold their input without its simulated noise (for the ``noise_response``
    loss; not for patches on disk)."""
    if config.dataset and noise_free_twin:
        raise ConfigError("the noise_response loss needs simulated pairs (data.scenes), "
                          f"not patches on disk ({config.dataset})")
    if config.dataset:
        quality = QualityFilter(config.min_ssim, config.min_psnr)
        return PatchDataset(config.dataset, split, quality=quality, transforms=RandomDihedral()
                            if config.augment and split == "Train" else None)
    scenes = scenes if scenes is not None else load_scenes(scene_sources(config))
    ranges = None
    if config.degradation == "training":
        try:
            ranges = dataclasses.replace(TRAINING_RANGES, **config.degradation_overrides)
        except TypeError as error:
            raise ConfigError(f"data.degradation_overrides: {error}") from None
    training = split == "Train"
    simulated = SimulatedPairs(scenes, split, size=config.patch_size,
                               length=config.train_samples if training else config.val_samples,
                               ranges=ranges, fixed=not training, seed=seed,
                               augment=config.augment if training else False,
                               noise_free_twin=noise_free_twin)
    if not config.real_scenes:
        return simulated
    real = RealWaldPairs(real_sources(config), split, size=config.patch_size,
                         length=config.real_samples if training else config.real_val_samples,
                         fixed=not training, seed=seed,
                         augment=config.augment if training else False, convention=convention,
                         noise_free_twin=noise_free_twin)
    return ConcatDataset([simulated, real])


def batch_tensors(batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(multispectral, pan, target) of a batch of tuples or of sample dicts."""
    if isinstance(batch, dict):
        return batch["image"], batch["pan"], batch["target"]
    return batch[0], batch[1], batch[2]


def batch_mask(batch) -> torch.Tensor | None:
    """The (N, 1, H, W) mask of target pixels to score, if the batch has one."""
    return batch.get("valid") if isinstance(batch, dict) else None


class PatchDataModule(L.LightningDataModule):
    def __init__(self, config: DataConfig, seed: int = 0,
                 convention: InputConvention | None = None,
                 noise_free_twin: bool = False) -> None:
        super().__init__()
        self.config = config
        self.seed = seed
        self.convention = convention
        self.noise_free_twin = noise_free_twin

    def setup(self, stage: str | None = None) -> None:
        scenes = None if self.config.dataset else load_scenes(scene_sources(self.config))
        self.train_set = make_dataset(self.config, "Train", self.seed, scenes, self.convention,
                                      self.noise_free_twin)
        self.val_set = make_dataset(self.config, "Validation", self.seed, scenes,
                                    self.convention, self.noise_free_twin)
        if len(self.train_set) == 0 or len(self.val_set) == 0:
            raise InputError(self.config.dataset, "no Train or Validation patch passes the "
                             "quality filter")

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        return DataLoader(dataset, batch_size=self.config.batch_size, shuffle=shuffle,
                          num_workers=self.config.num_workers,
                          persistent_workers=self.config.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)


class HarmonizerModule(L.LightningModule):
    """Trains ``model`` (a :class:`Harmonizer`) with a weighted loss; logs ``train_loss``,
    ``val_loss``, ``val_psnr`` and, each validation epoch, a preview figure. With a
    ``noise_response`` loss term the model also runs on each sample's noise-free twin
    (the batches must hold ``image_noise_free`` / ``pan_noise_free``: ``PatchDataModule(...,
    noise_free_twin=True)``), and ``val_noise_gain`` is logged: per validation batch the
    root mean square of :func:`~s2l8h.train.losses.flat_noise_gain` over its noisy samples and
    bands (on the flat pixels of the first such term), averaged over the batches (weighted by
    their noisy samples). The term needs a
    model without dropout: the two passes would draw different dropout masks, whose
    difference would count as response to noise. With ``denoise_input`` the model sees the
    bands and the pan after the input noise filter of ``harmonize``
    (:func:`~s2l8h.inference.denoise.filter_bands`, :func:`filter_pan`): a model trained
    so is meant to be run with that filter. The filter estimates each patch's own noise only
    on patches of at least :data:`~s2l8h.noise.MIN_NOISE_MODEL_SIDE` (40) pixels at 30 m;
    on smaller ones it assumes its floor, twice OLI's nominal noise."""

    def __init__(self, model: Harmonizer, loss: list[LossTerm], optimizer: OptimizerConfig,
                 scheduler: SchedulerConfig, max_epochs: int = 1,
                 denoise_input: bool = False) -> None:
        super().__init__()
        self.model = model
        self.denoise_input = denoise_input
        # The checkpoint describes its model (not the module itself): ``load_model(ckpt)``
        # and ``s2l8h export`` rebuild it without the training configuration.
        self.save_hyperparameters(model.describe(), logger=False)
        self.loss = WeightedLoss(loss)
        if self.loss.needs_variance and not model.has_variance_head:
            raise ValueError("the gaussian_nll loss needs a model with a variance head")
        if self.loss.noise_terms and any(
                isinstance(layer, torch.nn.modules.dropout._DropoutNd) and layer.p > 0
                for layer in model.modules()):
            raise ConfigError("the noise_response loss needs a model without dropout (the "
                              "noisy and the noise-free pass would draw different masks)")
        self.optimizer_config, self.scheduler_config = optimizer, scheduler
        self.max_epochs = max_epochs
        self._preview: tuple[torch.Tensor, ...] | None = None

    def forward(self, multispectral: torch.Tensor, pan: torch.Tensor):
        if self.denoise_input:
            with torch.no_grad():
                multispectral, pan = filter_bands(multispectral), filter_pan(pan)
        return self.model(multispectral, pan)

    def _noise_loss(self, batch, mean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(Σ weight · noise_response, the (N, C) squared noise gains of the first term,
        detached)."""
        multispectral, _, target = batch_tensors(batch)
        quiet = split_output(self(batch["image_noise_free"], batch["pan_noise_free"]))[0]
        gains: dict[float | None, torch.Tensor] = {}
        total = mean.new_zeros(())
        for term in self.loss.noise_terms:
            if term.flat_activity not in gains:
                gains[term.flat_activity] = flat_noise_gain(
                    mean, quiet, multispectral, batch["image_noise_free"], target,
                    flat_activity=term.flat_activity)
            squared = gains[term.flat_activity]
            total = total + term.weight * noise_penalty(squared, term.gain, term.bands)
        return total, next(iter(gains.values())).detach()

    def _loss_not_finite(self, loss: torch.Tensor) -> bool:
        """Whether ``loss`` is NaN or infinite on any process (decided together, so that
        several processes stop together). Where a gradient scaler runs (float16 mixed
        precision on a GPU), an overflow is left to it, which skips that step; NaN input is
        not an overflow and still stops the run."""
        not_finite = not bool(torch.isfinite(loss))
        if self._trainer is None:
            return not_finite
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        if scaler is not None and not bool(torch.isnan(loss)):
            return False
        return bool(self.trainer.strategy.reduce_boolean_decision(not_finite, all=False))

    def training_step(self, batch, batch_index: int) -> torch.Tensor:
        multispectral, pan, target = batch_tensors(batch)
        mean, variance = split_output(self(multispectral, pan))
        loss = self.loss(mean, target, variance, batch_mask(batch))
        if self.loss.noise_terms:
            loss = loss + self._noise_loss(batch, mean)[0]
        if self._loss_not_finite(loss):  # the next step would make every weight NaN
            raise TrainingError(
                f"the training loss is {loss.item()} at epoch {self.current_epoch}, step "
                f"{self.global_step}: the patches hold NaN or infinite values (a dataset "
                "built before its valid fraction counted the pan: rebuild it with "
                "--overwrite), or the learning rate is too high; the checkpoints written so "
                "far are kept")
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=True,
                 batch_size=target.shape[0])
        return loss

    def validation_step(self, batch, batch_index: int) -> None:
        multispectral, pan, target = batch_tensors(batch)
        mean, variance = split_output(self(multispectral, pan))
        mask = batch_mask(batch)
        loss = self.loss(mean, target, variance, mask)
        if self.loss.noise_terms:
            penalty, squared = self._noise_loss(batch, mean)
            loss = loss + penalty
            noisy = torch.isfinite(squared)
            if noisy.any():
                self.log("val_noise_gain", squared[noisy].mean().sqrt(),
                         batch_size=int(noisy.any(dim=1).sum()))
        mse = masked_mean((mean - target) ** 2, mask)
        self.log("val_loss", loss, prog_bar=True, batch_size=target.shape[0])
        self.log("val_psnr", 10 * torch.log10(1 / mse), prog_bar=True,
                 batch_size=target.shape[0])
        if batch_index == 0:
            self._preview = (multispectral[0].detach().cpu(), mean[0].detach().cpu(),
                             target[0].detach().cpu())

    def on_validation_epoch_end(self) -> None:
        experiment = getattr(self.logger, "experiment", None)
        if self._preview is None or not hasattr(experiment, "add_figure"):
            return
        experiment.add_figure("validation_preview", preview_figure(*self._preview),
                              global_step=self.current_epoch)

    def configure_optimizers(self):
        config = self.optimizer_config
        parameters = self.model.parameters()
        if config.name == "adam":
            optimizer = torch.optim.Adam(parameters, lr=config.lr,
                                         weight_decay=config.weight_decay)
        elif config.name == "adamw":
            optimizer = torch.optim.AdamW(parameters, lr=config.lr,
                                          weight_decay=config.weight_decay)
        elif config.name == "sgd":
            optimizer = torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum,
                                        weight_decay=config.weight_decay)
        else:
            raise ValueError(f"unknown optimizer {config.name!r} (adam, adamw, sgd)")
        schedule = self.scheduler_config
        if schedule.name == "none":
            return optimizer
        if schedule.name == "cosine":
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=max(schedule.t_max or self.max_epochs, 1),
                eta_min=schedule.min_lr)
        elif schedule.name == "step":
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, schedule.step_size,
                                                        schedule.gamma)
        elif schedule.name == "plateau":
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, factor=schedule.gamma, patience=schedule.step_size,
                min_lr=schedule.min_lr)
            return {"optimizer": optimizer,
                    "lr_scheduler": {"scheduler": scheduler, "monitor": "val_loss"}}
        else:
            raise ValueError(f"unknown scheduler {schedule.name!r} (none, cosine, step, "
                             "plateau)")
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


def preview_figure(multispectral: torch.Tensor, prediction: torch.Tensor,
                   target: torch.Tensor) -> Figure:
    """Input, prediction and target RGB side by side with one stretch."""
    def rgb(image: torch.Tensor) -> np.ndarray:
        return image[[2, 1, 0]].permute(1, 2, 0).float().numpy()

    reference = rgb(target)
    low, high = np.percentile(reference, [2, 98])
    figure = Figure(figsize=(9, 3.2), layout="constrained")
    axes = figure.subplots(1, 3)
    for axis, image, title in zip(axes, (rgb(multispectral), rgb(prediction), reference),
                                  ("Landsat input", "prediction", "Sentinel-2 target"),
                                  strict=True):
        axis.imshow(np.clip((image - low) / max(high - low, 1e-6), 0, 1),
                    interpolation="nearest")
        axis.set_title(title)
        axis.set_axis_off()
    return figure
