"""Every setting of the training commands, with its default and the reason for it.

YAML files in ``configs/``, ``MICROAUNET_SECTION__KEY`` environment variables and command-line
options only override these; nothing else defines a default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from microaunet_cli.datasets import DATASET_NAMES

# A name from the data set table (microaunet_cli/datasets.py).
Dataset = Literal[DATASET_NAMES]  # type: ignore[valid-type]


def _multiple_of_32(v: int) -> int:
    if v < 32 or v % 32:
        raise ValueError("must be a positive multiple of 32 (the networks halve the resolution five times)")
    return v


# An image side in pixels that the networks accept.
Side = Annotated[int, AfterValidator(_multiple_of_32)]


def _registered_model(v: str) -> str:
    from microaunet_cli.models import list_models  # the registry imports settings' neighbours

    if v not in list_models():
        raise ValueError(f"not a registered network; choose one of: {', '.join(list_models())}")
    return v


# The name of a network in the model registry.
ModelName = Annotated[str, AfterValidator(_registered_model)]


class Section(BaseModel):
    """A group of settings: unknown keys are errors, values are checked on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataSettings(Section):
    dataset: Dataset = "synthetic"
    # Folder written by `prepare-data`; None means data/<dataset> under the working directory.
    prepared_dir: Path | None = None
    # Input side in pixels; None takes the size the arrays were prepared at.
    size: Side | None = None
    # k-fold index when the data was prepared with the kfold policy.
    fold: int | None = Field(default=None, ge=0)
    # Keep the uint8 arrays on the GPU when they fit (the fast path); memory-map otherwise.
    on_device: Literal["auto", "always", "never"] = "auto"

    def resolved_dir(self) -> Path:
        return self.prepared_dir if self.prepared_dir is not None else Path("data") / self.dataset


class ModelSettings(Section):
    name: ModelName = "malunet"
    # Channel widths of the six stages; None keeps the network's own default [8, 16, 24, 32, 48, 64].
    c_list: list[int] | None = None
    bridge: bool = True
    num_classes: int = Field(default=1, ge=1)
    input_channels: int = Field(default=3, ge=1)

    @field_validator("c_list")
    @classmethod
    def _six_widths(cls, v: list[int] | None) -> list[int] | None:
        if v is None:
            return v
        if len(v) != 6 or any(c <= 0 or c % 4 for c in v):
            raise ValueError("needs six positive widths, each a multiple of 4 (GroupNorm uses 4 groups)")
        return v

    def kwargs(self) -> dict:
        """Keyword arguments for ``create_model``; unset options fall back to the network's defaults."""
        out = {"bridge": self.bridge, "num_classes": self.num_classes, "input_channels": self.input_channels}
        if self.c_list is not None:
            out["c_list"] = list(self.c_list)
        return out


class OptimSettings(Section):
    name: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=1e-2, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = Field(default=0.9, ge=0)  # sgd only
    # Clip the gradient norm; 0 disables.
    grad_clip: float = Field(default=0.0, ge=0)


class ScheduleSettings(Section):
    name: Literal["cosine", "constant"] = "cosine"
    # Cosine period in epochs; None spans the whole run.
    t_max: int | None = Field(default=None, ge=1)
    eta_min: float = Field(default=1e-5, ge=0)
    warmup_epochs: int = Field(default=0, ge=0)


class AugmentSettings(Section):
    """Applied on the device to whole batches, identically to image and mask."""

    enabled: bool = True
    hflip: float = Field(default=0.5, ge=0, le=1)
    vflip: float = Field(default=0.5, ge=0, le=1)
    # Probability of a random rotation, and its range in degrees (either way).
    rotate: float = Field(default=0.5, ge=0, le=1)
    rotate_degrees: float = Field(default=180.0, ge=0, le=180)
    # Probability of a random zoom, and its range (scale factor).
    scale: float = Field(default=0.3, ge=0, le=1)
    scale_range: tuple[float, float] = (0.8, 1.25)
    # Brightness and contrast jitter (fractions).
    brightness: float = Field(default=0.15, ge=0, le=1)
    contrast: float = Field(default=0.15, ge=0, le=1)
    # Multi-scale training (PraNet): each batch is resized by one factor drawn from this list, rounded
    # to a multiple of 32 (e.g. [0.75, 1.0, 1.25]); empty keeps the prepared size.
    multiscale: list[float] = Field(default_factory=list)

    @field_validator("multiscale")
    @classmethod
    def _positive_factors(cls, v: list[float]) -> list[float]:
        if any(not 0.25 <= f <= 4 for f in v):
            raise ValueError("each factor must lie in [0.25, 4], e.g. [0.75, 1.0, 1.25]")
        return v


class TrainSettings(Section):
    # MALUNet's published recipe: 300 epochs at batch 8.
    epochs: int = Field(default=300, ge=1)
    batch_size: int = Field(default=8, ge=1)
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"
    channels_last: bool = True
    compile: bool = False
    seed: int = 42
    # Bit-for-bit repeatable runs (slower on GPU; CPU runs repeat either way once seeded).
    deterministic: bool = False
    eval_every: int = Field(default=1, ge=1)
    eval_batch_size: int = Field(default=32, ge=1)
    # Segmentation loss: BCE + soft Dice, or the structure loss (boundary-weighted BCE + IoU, PraNet).
    loss: Literal["bce_dice", "structure"] = "bce_dice"
    # Exponential moving average of the weights, scored and saved in place of the raw weights; 0 disables.
    # 0.999 averages over about the last 1,000 steps (with a warm-up over the first steps).
    ema_decay: float = Field(default=0.0, ge=0, lt=1)
    # Deep supervision: weight of the decoder's side outputs (strides 32, 16 and 8, each upsampled and
    # scored with the segmentation loss; their mean is added); 0 disables. Their 1×1 heads are
    # training-only: the saved, exported and timed network is the same with or without them.
    deep_supervision: float = Field(default=0.0, ge=0)
    # CPU threads for torch (--threads); None leaves torch's choice: OMP_NUM_THREADS, else one per
    # physical core. Give each job its share when several run on one machine.
    num_threads: int | None = Field(default=None, ge=1)


class DistillSettings(Section):
    """The two-stage curriculum of docs/ARCHITECTURE.md, "Losses"."""

    # Teacher checkpoint; None looks in the default train-teacher run folder of the data set.
    teacher: Path | None = None
    # Accept a teacher checkpoint whose network is not registered as a teacher (a student, say);
    # refused otherwise, since that is usually a wrong --teacher path. Recorded in the run.
    allow_any_teacher: bool = False
    # Stage 1 is the first ceil(fraction × epochs) whole epochs; ω rises from 0 to 1 over exactly them.
    imitation_fraction: float = Field(default=0.6, ge=0, le=1)
    # Weight of the imitation blend (1-ω)·L_mimic + ω·L_KL. With channel_norm, L_mimic is the squared
    # distance between unit feature vectors per pixel (in [0, 4], summed over channels, not divided
    # by them), so its scale does not depend on the channel widths.
    lambda_imit: float = Field(default=1.0, ge=0)
    temperature: float = Field(default=4.0, gt=0)
    # Feature alignment: channel-normalised maps or attention-transfer maps.
    mimic: Literal["channel_norm", "attention"] = "channel_norm"
    lambda_con: float = Field(default=0.1, ge=0)
    # Stage-2 squared L2 norm of the student's conv and linear kernels (biases, norm gains and
    # LSCAB's α, β are left out); 0 disables.
    lambda_l2: float = Field(default=1e-5, ge=0)
    # Bernoulli KL kept through stage 2 at this weight, tying the student's outputs to the teacher's
    # after imitation ends. The published stage 2 has no output term (0); on Kvasir, 1 did not help.
    lambda_kl_stage2: float = Field(default=0.0, ge=0)
    n_anchors: int = Field(default=256, ge=1)
    n_negatives: int = Field(default=512, ge=1)
    contrast_temperature: float = Field(default=0.1, gt=0)
    proj_dim: int = Field(default=32, ge=4)
    # Extra weight of anchors the teacher gets right and the student gets wrong.
    preference_weight: float = Field(default=2.0, ge=1)
    # Use a teacher whose recorded data identity (data set, split, seed, size, fold, content) differs
    # from this run's. Off: such a teacher may have trained on the student's test images.
    allow_teacher_mismatch: bool = False


class OutputSettings(Section):
    runs_dir: Path = Path("runs")
    # Run folder name; None derives "<dataset>-<model>" (teacher) or "<dataset>-<model>-distill".
    name: str | None = None
    # Replace an existing run folder of the same name instead of refusing to start.
    overwrite: bool = False
    quiet: bool = False


class RunSettings(Section):
    """Settings of a training run: train-teacher and distill share them."""

    data: DataSettings = DataSettings()
    model: ModelSettings = ModelSettings()
    optim: OptimSettings = OptimSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    augment: AugmentSettings = AugmentSettings()
    train: TrainSettings = TrainSettings()
    distill: DistillSettings = DistillSettings()
    output: OutputSettings = OutputSettings()
