"""The training engine: any registered model on any fold, with a checkpoint after every epoch.

``train(TrainConfig(model="jaa_net", data="data/synthetic", fold=1, out="runs/jaa"))`` trains
on the fold's training subjects of the aligned-crop cache ``<data>/aufacs_cache`` and writes
the run folder:

=============================  ==============================================================
``config.json``                the resolved :class:`TrainConfig` (recipe defaults filled in)
``checkpoints/epoch_NNN.pt``   everything after epoch NNN (1-based): model, optimiser,
                               scheduler, gradient scaler, RNG states, epoch, config
``iterations.csv``             per iteration: epoch, iteration, step, lr, loss, each loss part
``epochs.csv``                 per epoch: the mean of each, seconds, samples per second
=============================  ==============================================================

**Resume.** Training again into the same folder continues after the last checkpoint
(written atomically, so the last one on disk is complete) and drops the log rows of the
unfinished epoch. Augmentations are a hash of (seed, epoch, item) (see
:mod:`aufacs.data.dataset`), the shuffling is seeded by (seed, epoch), and torch's RNG
(dropout) is restored from the checkpoint, so on CPU a resumed run ends with exactly the
weights of an uninterrupted one.

**Distributed.** Under ``torchrun --nproc_per_node=W`` the same entry trains with
DistributedDataParallel (gloo on CPU, nccl on CUDA); only rank 0 writes. ``batch_size`` is
the global batch: each rank loads ``batch_size / W`` frames, rank r taking the frames
``r::W`` of each global window of the shuffled order (DistributedSampler). One process with
``micro_batches=W`` computes the same: it splits each loaded batch into the same ``r::W``
micro-batches and averages their gradients, as DDP does. Buffers (BatchNorm running
statistics) follow DDP's ``broadcast_buffers``, which keeps rank 0's: only micro-batch 0's
update is kept, while every micro-batch normalises with its own batch statistics.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import os
import pickle
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import LambdaLR
from torch.torch_version import TorchVersion
from torch.utils.data import DistributedSampler
from tqdm.auto import tqdm

from aufacs.core.config import config_from_dict, save_config
from aufacs.core.errors import AufacsError
from aufacs.core.io import atomic_write
from aufacs.data.cache import META_FILE, AlignedCache
from aufacs.data.dataset import AlignedFaceDataset, batch_loader
from aufacs.data.prepare import KINDS, cache_folder, dataset_split
from aufacs.data.splits import N_FOLDS, Split
from aufacs.data.stats import WEIGHT_SCHEMES, au_weights, occurrence_rates
from aufacs.data.table import FrameTable
from aufacs.engine.recipes import OPTIMIZERS, SCHEDULES, lr_factor, recipe_for
from aufacs.models import AUModel, available_models, build_model, model_options

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
AMP_MODES: tuple[str, ...] = ("auto", "bf16", "fp16", "off")
CONFIG_FILE = "config.json"
CHECKPOINT_FOLDER = "checkpoints"
ITERATIONS_FILE = "iterations.csv"
EPOCHS_FILE = "epochs.csv"
#: What the ``amp`` option of training and evaluation accepts (see :func:`resolve_amp`).
AMP_HELP = "mixed precision: auto (bf16 or fp16 on CUDA, off on CPU), bf16, fp16 (CUDA) or off"
#: The first torch with fused SGD and AdamW kernels for CPU tensors (CUDA had them earlier).
FUSED_OPTIMIZERS_SINCE = "2.4"
#: Version of the checkpoint layout written by :func:`save_checkpoint`.
CHECKPOINT_FORMAT = 1
#: Fields that may differ when a run is resumed: where things are and how fast they run.
RESUMABLE_FIELDS = frozenset(
    {"epochs", "data", "cache", "out", "device", "amp", "deterministic", "num_workers", "progress"}
)
_CHECKPOINT_NAME = re.compile(r"epoch_(\d+)\.pt")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on. ``None``: the model's recipe default
    (:mod:`aufacs.engine.recipes`) or, for ``kind``, the data set kind the cache was prepared as."""

    model: str = field(default="jaa_net", metadata={"help": "model: jaa_net, me_graph_au, eac_net"})
    data: str = field(default="data/synthetic", metadata={"help": "data set root folder"})
    cache: str | None = field(
        default=None, metadata={"help": "aligned-crop cache folder (default <data>/aufacs_cache)"}
    )
    kind: str | None = field(
        default=None, metadata={"help": "bp4d, disfa or synthetic (default: as prepared)"}
    )
    fold: int = field(default=1, metadata={"help": "fold 1-3: train on two parts, test on one"})
    out: str | None = field(
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
    if isinstance(config.fold, bool) or config.fold not in range(1, N_FOLDS + 1):
        raise AufacsError(f"fold must be one of 1, 2, 3, got {config.fold!r}")
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
    folder = cache_folder(config.data, config.cache)
    if not (folder / META_FILE).is_file():
        raise AufacsError(
            f"data folder {config.data} has no aligned-face cache in {folder}; run "
            f"`aufacs prepare --data {config.data}` first"
        )
    _check_out_folder(run_folder(config), config.model)


def run_folder(config: TrainConfig) -> Path:
    """The run folder: ``config.out`` or ``runs/<model>_fold<fold>``."""
    return (
        Path(config.out)
        if config.out is not None
        else Path("runs") / f"{config.model}_fold{config.fold}"
    )


def load_run_config(run: Path | str) -> TrainConfig:
    """The resolved configuration saved in run folder ``run``."""
    path = Path(run) / CONFIG_FILE
    if not path.is_file():
        raise AufacsError(f"{run} is not a training run folder: it has no {CONFIG_FILE}")
    try:
        values = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise AufacsError(f"cannot read run configuration {path}: {error}") from None
    return config_from_dict(TrainConfig, values, source=str(path))


def _check_out_folder(out: Path, model: str) -> None:
    """Refuse an output folder that holds another model's run or something else."""
    if not out.exists() or not any(out.iterdir()):
        return
    if not (out / CONFIG_FILE).is_file():
        raise AufacsError(
            f"output folder {out} is not empty and holds no training run ({CONFIG_FILE}); "
            "choose a new folder"
        )
    previous = load_run_config(out)
    if previous.model != model:
        raise AufacsError(
            f"output folder {out} holds a {previous.model} run, not {model}; choose another "
            "folder to train a new run"
        )


def data_kind(config: TrainConfig, cache: AlignedCache) -> str:
    """``config.kind``, else the kind ``aufacs prepare`` recorded in the cache's audit.json."""
    if config.kind is not None:
        return config.kind
    audit = cache.path / "audit.json"
    kind = json.loads(audit.read_text()).get("kind") if audit.is_file() else None
    if kind not in KINDS:
        raise AufacsError(
            f"cache {cache.path} does not record its data set kind; pass kind=bp4d, disfa or "
            "synthetic"
        )
    return kind


def fold_split(cache: AlignedCache, kind: str, fold: int) -> Split:
    """The subject split of ``fold`` for the frames in ``cache`` (see ``dataset_split``)."""
    return dataset_split(FrameTable(cache.table, cache.aus, cache.path), kind, fold)


def build_run_model(
    config: TrainConfig, cache: AlignedCache, *, pretrained: bool = True
) -> AUModel:
    """The configured model for the cache's AUs (their numbers passed when the builder takes
    ``aus``, so that attention rules pick the right regions). ``pretrained=False`` skips
    loading pretrained backbone weights (a checkpoint will replace them)."""
    options = dict(config.model_options)
    accepted = model_options(config.model)
    if "aus" in accepted:
        options.setdefault("aus", cache.aus.aus)
    if not pretrained and "pretrained" in accepted:
        options["pretrained"] = None
    return build_model(config.model, len(cache.aus), **options)


def make_dataset(
    cache: AlignedCache,
    subjects: tuple[str, ...],
    model: AUModel,
    *,
    train: bool,
    flip: bool = True,
    seed: int = 0,
) -> AlignedFaceDataset:
    """The frames of ``subjects`` as the model's input spec wants them; ``seed`` seeds the
    training augmentations."""
    spec = model.input_spec
    return AlignedFaceDataset(
        cache, subjects=subjects, train=train, crop_size=spec.crop_size, resize_to=spec.resize_to,
        mean=spec.mean, std=spec.std, flip=flip, seed=seed,
    )  # fmt: skip


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    """``"auto"``: CUDA when available, else CPU; ``"cuda"`` refuses a machine without one."""
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise AufacsError("device 'cuda' was asked for but torch sees no CUDA device")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, None for full precision. ``"auto"``: bf16 on CUDA where supported,
    else fp16; full precision on CPU. ``"bf16"`` also runs on CPU (about 1.6x faster JAA-Net
    training steps on a CPU with AVX-512 BF16, see ``docs/benchmarks.md``); fp16 is CUDA-only."""
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if device.type != "cuda":
        if amp == "bf16":
            return torch.bfloat16
        raise AufacsError(f"amp={amp!r} needs a CUDA device; use amp='bf16' or 'off' on {device}")
    if amp == "fp16" or (amp == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Mixed precision for a forward pass, or nothing when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """A batch on ``device``; images in channels-last layout on CUDA."""
    moved = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    if device.type == "cuda":
        moved["image"] = moved["image"].contiguous(memory_format=torch.channels_last)
    return moved


def resolve_config(config: TrainConfig, model: AUModel, kind: str) -> TrainConfig:
    """``config`` with every ``None`` filled in: recipe values, the data kind, the AU weight
    scheme and the run folder."""
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
        "out": str(run_folder(config)),
    }
    given = {k: v for k, v in dataclasses.asdict(config).items() if v is not None}
    return dataclasses.replace(config, **{**filled, **given})


def _check_resumable(saved: TrainConfig, config: TrainConfig) -> None:
    """Refuse to continue a run whose results-changing settings differ from ``config``."""
    old, new = dataclasses.asdict(saved), dataclasses.asdict(config)
    changed = [k for k in new if k not in RESUMABLE_FIELDS and old[k] != new[k]]
    if changed:
        details = ", ".join(f"{k} {old[k]!r} -> {new[k]!r}" for k in changed)
        raise AufacsError(
            f"{config.out} holds a run with different settings ({details}); use a new output "
            "folder or the same settings to resume it"
        )


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _set_deterministic(deterministic: bool, device: torch.device) -> None:
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = deterministic
        torch.backends.cudnn.benchmark = not deterministic


# --- checkpoints ------------------------------------------------------------------------------


def checkpoint_path(run: Path | str, epoch: int) -> Path:
    """``<run>/checkpoints/epoch_NNN.pt``: the state after ``epoch`` (1-based)."""
    return Path(run) / CHECKPOINT_FOLDER / f"epoch_{epoch:03d}.pt"


def checkpoint_paths(run: Path | str) -> dict[int, Path]:
    """Every complete checkpoint of a run: epoch -> path, in epoch order."""
    folder = Path(run) / CHECKPOINT_FOLDER
    found = {}
    for path in folder.glob("epoch_*.pt") if folder.is_dir() else []:
        match = _CHECKPOINT_NAME.fullmatch(path.name)
        if match:
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` atomically: to a temporary file beside ``path``, then renamed."""
    with atomic_write(path, "wb") as handle:
        torch.save(state, handle)


def load_checkpoint(path: Path | str) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``: tensors and plain containers only.

    A file that holds other pickled objects is refused with AufacsError, as is a file torch
    cannot read or one that is not an aufacs checkpoint.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise AufacsError(
            f"checkpoint {path} holds arbitrary pickled objects, which aufacs refuses to load; "
            "only checkpoints of tensors and plain containers (as aufacs writes them) are accepted"
        ) from None
    except (OSError, RuntimeError, EOFError) as error:
        raise AufacsError(f"checkpoint {path} cannot be read: {error}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise AufacsError(
            f"checkpoint {path} is not an aufacs training checkpoint (format {CHECKPOINT_FORMAT})"
        )
    return state


def rng_state() -> dict[str, Any]:
    """The torch (CPU and CUDA), NumPy and Python RNG states as tensors and plain values."""
    _, keys, position, has_gauss, gauss = np.random.get_state()
    version, words, python_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": torch.from_numpy(keys.astype(np.int64)),
        "numpy_position": int(position),
        "numpy_gauss": [int(has_gauss), float(gauss)],
        "python": torch.tensor(words, dtype=torch.int64),
        "python_version": int(version),
        "python_gauss": python_gauss,
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved (CUDA states only where devices exist)."""
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available() and state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"][: torch.cuda.device_count()])
    has_gauss, gauss = state["numpy_gauss"]
    keys = state["numpy"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, state["numpy_position"], has_gauss, gauss))
    words = tuple(state["python"].tolist())
    random.setstate((state["python_version"], words, state["python_gauss"]))


# --- logs -------------------------------------------------------------------------------------


class CsvLog:
    """Rows appended to a CSV file, flushed at once; the header comes from the first row."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = None
        self.writer: csv.DictWriter | None = None

    def write(self, row: dict[str, float]) -> None:
        if self.writer is None:
            fresh = not self.path.is_file() or self.path.stat().st_size == 0
            self.handle = open(self.path, "a", newline="")  # noqa: SIM115 - closed in close()
            self.writer = csv.DictWriter(self.handle, fieldnames=list(row))
            if fresh:
                self.writer.writeheader()
        self.writer.writerow(row)
        self.handle.flush()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def _drop_rows_after(path: Path, epoch: int) -> None:
    """Keep only the rows of ``path`` (a CSV with an ``epoch`` column) up to ``epoch``.

    Rows are logged before the checkpoint of their epoch is written, so every row up to a
    checkpoint is complete; a row cut short by a crash has empty fields and is dropped.
    """
    if not path.is_file() or path.stat().st_size == 0:
        return
    table = pd.read_csv(path).dropna()
    table[table["epoch"] <= epoch].to_csv(path, index=False)


# --- training ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Processes:
    """This process's place in a ``torchrun`` job (rank 0 of 1 when run alone)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Processes:
        return cls(
            rank=int(os.environ.get("RANK", 0)),
            world=int(os.environ.get("WORLD_SIZE", 1)),
            local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        )

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def make_optimizer(model: AUModel, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD or AdamW (β2 0.999) over the trainable parameters, one group per entry of the
    model's ``optimizer_param_groups()`` at ``lr × lr_mult``. Put the model on its device
    first: from torch 2.4 on, the optimiser runs as one fused kernel on CPU and CUDA (4x less
    time than the per-parameter loop for JAA-Net's 22 M parameters on CPU)."""
    groups = [
        {**g, "params": [p for p in g["params"] if p.requires_grad], "lr": config.lr * g["lr_mult"]}
        for g in model.optimizer_param_groups()
    ]
    groups = [g for g in groups if g["params"]]
    fused = {"fused": True} if TorchVersion(torch.__version__) >= FUSED_OPTIMIZERS_SINCE else {}
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
            nesterov=config.nesterov, **fused,
        )  # fmt: skip
    return torch.optim.AdamW(
        groups, lr=config.lr, betas=(config.momentum, 0.999), weight_decay=config.weight_decay,
        **fused,
    )  # fmt: skip


@contextlib.contextmanager
def buffers_kept(model: nn.Module, keep: bool) -> Iterator[None]:
    """While ``keep``, undo at the end of the block whatever it did to the model's buffers
    (BatchNorm running statistics and counters, however a model updates them), as DDP's
    ``broadcast_buffers`` replaces the other ranks' buffers with rank 0's. Wrap the forward
    and the backward pass: the backward may need the buffers as the forward left them."""
    saved = [(buffer, buffer.clone()) for buffer in model.buffers()] if keep else []
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


def split_batch(batch: dict[str, torch.Tensor], parts: int) -> list[dict[str, torch.Tensor]]:
    """Interleaved micro-batches: part r holds items r, r + parts, ... (a rank's share)."""
    return [{k: v[r::parts] for k, v in batch.items()} for r in range(parts)]


class Trainer:
    """The state of one training run and the loop over its epochs."""

    def __init__(self, config: TrainConfig, processes: Processes) -> None:
        self.processes = processes
        cache = AlignedCache.open(cache_folder(config.data, config.cache))
        kind = data_kind(config, cache)
        self.device = resolve_device(config.device, processes.local_rank)
        self.amp = resolve_amp(config.amp, self.device)
        _seed_everything(config.seed)
        _set_deterministic(config.deterministic, self.device)
        model = build_run_model(config, cache)
        self.config = config = resolve_config(config, model, kind)
        self.out = Path(config.out)
        share = config.micro_batches * processes.world
        if config.batch_size % share:
            raise AufacsError(
                f"batch_size {config.batch_size} must be divisible by micro_batches x processes "
                f"= {share}"
            )
        split = fold_split(cache, kind, config.fold)
        dataset = make_dataset(
            cache, split.train, model, train=True, flip=config.flip, seed=config.seed
        )
        weights = au_weights(occurrence_rates(dataset.labels), config.au_weights, cache.aus.aus)
        self.au_weights = torch.as_tensor(weights, dtype=torch.float32, device=self.device)
        self.dataset = dataset
        self.sampler = DistributedSampler(
            dataset, num_replicas=processes.world, rank=processes.rank, shuffle=True,
            seed=config.seed, drop_last=True,
        )  # fmt: skip
        self.loader = batch_loader(
            dataset, config.batch_size // processes.world, sampler=self.sampler, drop_last=True,
            num_workers=config.num_workers, pin_memory=self.device.type == "cuda",
        )  # fmt: skip
        self.steps = min(len(self.loader), config.max_steps_per_epoch or len(self.loader))
        if self.steps == 0:
            raise AufacsError(
                f"fold {config.fold} has {len(dataset)} training frames, fewer than one batch of "
                f"{config.batch_size}; lower batch_size"
            )
        self.module = model.to(self.device)
        if self.device.type == "cuda":
            self.module = self.module.to(memory_format=torch.channels_last)
        self.optimizer = make_optimizer(self.module, config)
        factor = lr_factor(
            config.schedule, iters_per_epoch=self.steps, total_iters=self.steps * config.epochs,
            step_epochs=config.lr_step_epochs, gamma=config.lr_gamma,
        )  # fmt: skip
        self.scheduler = LambdaLR(self.optimizer, factor)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == torch.float16)
        self.net: nn.Module = self.module
        self.epoch = 0

    def restore(self) -> None:
        """Continue after the last checkpoint in the run folder, if there is one."""
        saved = checkpoint_paths(self.out)
        if not saved:
            return
        state = load_checkpoint(saved[max(saved)])
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self.epoch = int(state["epoch"])

    def save(self) -> Path:
        """Checkpoint the state after ``self.epoch``; returns its path."""
        state = {
            "format": CHECKPOINT_FORMAT,
            "epoch": self.epoch,
            "config": dataclasses.asdict(self.config),
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(),
        }
        path = checkpoint_path(self.out, self.epoch)
        save_checkpoint(state, path)
        return path

    def run(self) -> None:
        """Train from ``self.epoch`` to ``config.epochs``, checkpointing after each epoch."""
        config, main = self.config, self.processes.main
        if self.processes.world > 1:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.module, device_ids=device_ids)
        iterations = CsvLog(self.out / ITERATIONS_FILE)
        epochs = CsvLog(self.out / EPOCHS_FILE)
        try:
            while self.epoch < config.epochs:
                start = time.perf_counter()
                means = self.train_epoch(self.epoch + 1, iterations if main else None)
                self.epoch += 1
                if main:
                    seconds = time.perf_counter() - start
                    samples = self.steps * config.batch_size
                    epochs.write({"epoch": self.epoch, **means, "seconds": seconds,
                                  "samples_per_s": samples / seconds})  # fmt: skip
                    path = self.save()
                    if config.progress:
                        done = f"epoch {self.epoch}/{config.epochs}: loss {means['loss']:.4f}"
                        tqdm.write(f"{done}, {seconds:.0f} s, saved {path}")
                self.processes.barrier()
        finally:
            iterations.close()
            epochs.close()

    def train_epoch(self, epoch: int, log: CsvLog | None) -> dict[str, float]:
        """One epoch (1-based number ``epoch``); returns the mean of the loss and each part."""
        self.net.train()
        self.sampler.set_epoch(epoch - 1)
        self.dataset.set_epoch(epoch - 1)
        sums: dict[str, float] = {}
        bar = tqdm(
            total=self.steps, desc=f"epoch {epoch}/{self.config.epochs}", unit="step",
            disable=not (self.config.progress and self.processes.main), leave=False,
        )  # fmt: skip
        with bar:
            for iteration, batch in enumerate(self.loader, start=1):
                if iteration > self.steps:
                    break
                parts = self.train_step(to_device(batch, self.device), epoch, iteration)
                for name, value in parts.items():
                    sums[name] = sums.get(name, 0.0) + value
                if log is not None:
                    lr = self.optimizer.param_groups[0]
                    log.write({"epoch": epoch, "iteration": iteration,
                               "step": (epoch - 1) * self.steps + iteration,
                               "lr": lr["lr"] / lr["lr_mult"], **parts})  # fmt: skip
                self.scheduler.step()
                bar.update()
                bar.set_postfix(loss=f"{parts['loss']:.4f}")
        return {name: total / self.steps for name, total in sums.items()}

    def train_step(
        self, batch: dict[str, torch.Tensor], epoch: int, iteration: int
    ) -> dict[str, float]:
        """Forward and backward over the micro-batches, then one optimiser step.

        Returns the loss and its parts averaged over micro-batches (and processes). A
        non-finite value stops the run before the step, with AufacsError.
        """
        parts_per_batch = self.config.micro_batches
        self.optimizer.zero_grad(set_to_none=True)
        totals: torch.Tensor | None = None
        names: list[str] = []
        for index, piece in enumerate(split_batch(batch, parts_per_batch)):
            last = index == parts_per_batch - 1
            sync = (
                self.net.no_sync()
                if isinstance(self.net, DistributedDataParallel) and not last
                else contextlib.nullcontext()
            )
            with sync, buffers_kept(self.module, index > 0):
                with autocast(self.device, self.amp):
                    output = self.net(piece)
                    loss, parts = self.module.loss(output, piece, self.au_weights)
                self.scaler.scale(loss / parts_per_batch).backward()
            named = {"loss": loss.detach(), **{k: v for k, v in parts.items() if k != "total"}}
            names = list(named)
            values = torch.stack([v.float() for v in named.values()]) / parts_per_batch
            totals = values if totals is None else totals + values
        if self.processes.world > 1:
            dist.all_reduce(totals)
            totals /= self.processes.world
        means = dict(zip(names, totals.tolist(), strict=True))
        bad = next((name for name, value in means.items() if not math.isfinite(value)), None)
        if bad is not None:
            saved = checkpoint_paths(self.out)
            kept = (
                f"the last good checkpoint is {saved[max(saved)]}"
                if saved
                else "no checkpoint was written"
            )
            raise AufacsError(
                f"training stopped: {bad} became {means[bad]} at epoch {epoch}, iteration "
                f"{iteration}; {kept}"
            )
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return means


def train(config: TrainConfig) -> Path:
    """Train ``config.model`` on fold ``config.fold``; returns the run folder.

    Checks the configuration first (:func:`check_config`), resumes after the last checkpoint
    of the run folder if there is one, and trains to ``epochs``. Under ``torchrun`` every
    process calls this; rank 0 writes.
    """
    check_config(config)
    processes = Processes.from_env()
    started_group = False
    if processes.world > 1 and not dist.is_initialized():
        backend = "nccl" if resolve_device(config.device).type == "cuda" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(processes.local_rank)
        dist.init_process_group(backend)
        started_group = True
    try:
        trainer = Trainer(config, processes)
        out = trainer.out
        if (out / CONFIG_FILE).is_file():
            _check_resumable(load_run_config(out), trainer.config)
        trainer.restore()
        if processes.main:
            out.mkdir(parents=True, exist_ok=True)
            save_config(trainer.config, out / CONFIG_FILE)
            _drop_rows_after(out / ITERATIONS_FILE, trainer.epoch)
            _drop_rows_after(out / EPOCHS_FILE, trainer.epoch)
        processes.barrier()
        trainer.run()
    finally:
        if started_group:
            dist.destroy_process_group()
    return out
