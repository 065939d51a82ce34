"""The training configuration: its fields, the checks on them, and the recipe defaults filled in."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aufacs.core.errors import AufacsError
from aufacs.data.prepare import KINDS
from aufacs.data.splits import check_fold
from aufacs.data.stats import WEIGHT_SCHEMES
from aufacs.engine.checkpoints import checkpoint_paths
from aufacs.engine.device import AMP_HELP, AMP_MODES, DEVICES, THREADS_HELP, default_threads
from aufacs.engine.recipes import OPTIMIZERS, SCHEDULES, recipe_for
from aufacs.models import AUModel, available_models, model_options

#: Fields that may differ when a run is resumed: where things are and how fast they run.
RESUMABLE_FIELDS = frozenset(
    {
        "epochs",
        "data",
        "cache",
        "out",
        "device",
        "amp",
        "deterministic",
        "num_workers",
        "threads",
        "progress",
    }
)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on. ``None``: the model's recipe default
    (:mod:`aufacs.engine.recipes`) or, for ``kind``, the data set kind the cache was prepared as."""

    model: str = field(
        default="jaa_net",
        metadata={"help": "model: jaa_net, me_graph_au, eac_net or an installed plug-in"},
    )
    data: Path = field(default=Path("data/synthetic"), metadata={"help": "data set root folder"})
    cache: Path | None = field(
        default=None, metadata={"help": "aligned-crop cache folder (default <data>/aufacs_cache)"}
    )
    kind: str | None = field(
        default=None, metadata={"help": "bp4d, disfa or synthetic (default: as prepared)"}
    )
    fold: int = field(default=1, metadata={"help": "fold 1-3: train on two parts, test on one"})
    out: Path | None = field(
        default=None, metadata={"help": "run folder (default runs/<model>_fold<fold>)"}
    )
    epochs: int | None = field(default=None, metadata={"help": "epochs to train"})
    batch_size: int | None = field(
        default=None, metadata={"help": "global batch size (all processes together)"}
    )
    optimizer: str | None = field(default=None, metadata={"help": "sgd or adamw"})
    lr: float | None = field(default=None, metadata={"help": "base learning rate"})
    weight_decay: float | None = field(default=None, metadata={"help": "weight decay"})
    momentum: float | None = field(
        default=None, metadata={"help": "SGD momentum, or AdamW's beta1"}
    )
    nesterov: bool | None = field(default=None, metadata={"help": "SGD: Nesterov momentum"})
    schedule: str | None = field(
        default=None, metadata={"help": "learning-rate schedule: step, cosine or constant"}
    )
    lr_step_epochs: int | None = field(
        default=None, metadata={"help": "step schedule: epochs between learning-rate drops"}
    )
    lr_gamma: float | None = field(
        default=None, metadata={"help": "step schedule: factor of each learning-rate drop"}
    )
    model_options: dict[str, Any] = field(
        default_factory=dict,
        metadata={"help": 'model builder options as JSON, e.g. {"crop_size": 64, "stage": 2}'},
    )
    au_weights: str | None = field(
        default=None,
        metadata={"help": "AU class-weight scheme: inverse or inverse_plus_one (default: model's)"},
    )
    flip: bool = field(default=True, metadata={"help": "random horizontal flips in training"})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda"})
    amp: str = field(default="auto", metadata={"help": AMP_HELP})
    deterministic: bool = field(
        default=False, metadata={"help": "use deterministic algorithms only (slower on CUDA)"}
    )
    seed: int = field(default=0, metadata={"help": "random seed"})
    num_workers: int = field(default=0, metadata={"help": "data-loading worker processes"})
    max_steps_per_epoch: int | None = field(
        default=None, metadata={"help": "stop each epoch after this many steps (smoke runs)"}
    )
    micro_batches: int = field(
        default=1, metadata={"help": "split each batch into this many gradient-averaged parts"}
    )
    threads: int | None = field(default=None, metadata={"help": THREADS_HELP})
    progress: bool = field(default=True, metadata={"help": "show progress bars"})


#: (field, test, what is expected) for the numeric fields, checked when not None.
_RANGES = (
    ("epochs", lambda v: v >= 1, "a positive integer"),
    ("batch_size", lambda v: v >= 1, "a positive integer"),
    ("lr", lambda v: v > 0, "a positive number"),
    ("weight_decay", lambda v: v >= 0, "zero or more"),
    ("momentum", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("lr_step_epochs", lambda v: v >= 1, "a positive integer"),
    ("lr_gamma", lambda v: v > 0, "a positive number"),
    ("num_workers", lambda v: v >= 0, "zero or more"),
    ("max_steps_per_epoch", lambda v: v >= 1, "a positive integer"),
    ("micro_batches", lambda v: v >= 1, "a positive integer"),
    ("seed", lambda v: v >= 0, "zero or more"),
    ("threads", lambda v: v >= 1, "a positive integer"),
)


#: (field, allowed values), checked when not None.
_CHOICES = (
    ("kind", KINDS),
    ("optimizer", OPTIMIZERS),
    ("schedule", SCHEDULES),
    ("au_weights", tuple(WEIGHT_SCHEMES)),
    ("device", DEVICES),
    ("amp", AMP_MODES),
)


def check_config(config: TrainConfig) -> None:
    """Refuse a bad configuration with one sentence, before any work is done."""
    if config.model not in available_models():
        raise AufacsError(
            f"unknown model {config.model!r}; available models: {', '.join(available_models())}"
        )
    check_fold(config.fold)
    for name, valid, expected in _RANGES:
        value = getattr(config, name)
        if value is not None and not (isinstance(value, int | float) and valid(value)):
            raise AufacsError(f"{name} must be {expected}, got {value!r}")
    for name, allowed in _CHOICES:
        value = getattr(config, name)
        if value is not None and value not in allowed:
            raise AufacsError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    if not isinstance(config.model_options, dict):
        raise AufacsError(
            f"model_options must be a dict of builder options, got {config.model_options!r}"
        )
    unknown = sorted(set(config.model_options) - set(model_options(config.model)))
    if unknown:
        raise AufacsError(
            f"unknown model option(s) {', '.join(unknown)} for {config.model}; valid options: "
            f"{', '.join(model_options(config.model))}"
        )


def run_folder(config: TrainConfig) -> Path:
    """The run folder: ``config.out`` or ``runs/<model>_fold<fold>``."""
    return (
        Path(config.out)
        if config.out is not None
        else Path("runs") / f"{config.model}_fold{config.fold}"
    )


def resolve_config(config: TrainConfig, model: AUModel, kind: str) -> TrainConfig:
    """``config`` with every ``None`` filled in (recipe values, the data kind, the AU weight
    scheme, the run folder, the CPU threads) and its paths made absolute, so that the run can
    be evaluated or resumed from any working directory."""
    recipe = recipe_for(config.model, model.stage)
    filled = {
        "epochs": recipe.epochs,
        "batch_size": recipe.batch_size,
        "optimizer": recipe.optimizer,
        "lr": recipe.lr,
        "weight_decay": recipe.weight_decay,
        "momentum": recipe.momentum,
        "nesterov": recipe.nesterov,
        "schedule": recipe.schedule,
        "lr_step_epochs": recipe.step_epochs,
        "lr_gamma": recipe.gamma,
        "au_weights": model.weight_scheme,
        "kind": kind,
        "out": run_folder(config),
        "threads": default_threads(),
    }
    given = {k: v for k, v in dataclasses.asdict(config).items() if v is not None}
    resolved = dataclasses.replace(config, **{**filled, **given})
    resolved = dataclasses.replace(
        resolved, model_options=resolve_model_options(resolved.model_options)
    )
    paths = {
        name: Path(value).resolve()
        for name in ("data", "cache", "out")
        if (value := getattr(resolved, name)) is not None
    }
    return dataclasses.replace(resolved, **paths)


def resolve_model_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with a run folder given as ``stage1_weights`` replaced by the path of that
    run's last checkpoint (so a stage-2 run can name a stage-1 run trained for any number of
    epochs); refuses a folder without checkpoints."""
    weights = options.get("stage1_weights")
    if weights is None or not Path(weights).is_dir():
        return dict(options)
    saved = checkpoint_paths(weights)
    if not saved:
        raise AufacsError(
            f"stage1_weights {weights} is a folder without checkpoints; expected a stage-1 "
            "run folder that has finished an epoch, or a stage-1 weight file"
        )
    return {**options, "stage1_weights": str(Path(saved[max(saved)]).resolve())}


def check_resumable(saved: TrainConfig, config: TrainConfig) -> None:
    """Refuse to continue a run whose results-changing settings differ from ``config``."""
    old, new = dataclasses.asdict(saved), dataclasses.asdict(config)
    changed = [k for k in new if k not in RESUMABLE_FIELDS and old[k] != new[k]]
    if changed:
        details = ", ".join(f"{k} {old[k]!r} -> {new[k]!r}" for k in changed)
        raise AufacsError(
            f"{config.out} holds a run with different settings ({details}); use a new output "
            "folder or the same settings to resume it"
        )
