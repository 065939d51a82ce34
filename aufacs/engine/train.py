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
``resources.json``             the last epoch's seconds per step, peak memory, training
                               frames and the recipe's epochs (for projections of a run)
=============================  ==============================================================

A batch too large for the device stops the run with a sentence naming the batch size.

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
import math
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DistributedSampler
from tqdm.auto import tqdm

from aufacs.core.config import config_to_dict, save_config
from aufacs.core.console import say
from aufacs.core.errors import AufacsError
from aufacs.data.cache import AlignedCache
from aufacs.data.dataset import batch_loader
from aufacs.data.prepare import cache_folder
from aufacs.data.stats import au_weights, occurrence_rates
from aufacs.engine.checkpoints import (
    CHECKPOINT_FORMAT,
    checkpoint_path,
    checkpoint_paths,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_aside_unreadable,
    set_rng_state,
)
from aufacs.engine.config import (
    TrainConfig,
    check_config,
    check_resumable,
    resolve_config,
    run_folder,
)
from aufacs.engine.device import (
    autocast,
    device_choices,
    resolve_device,
    seed_everything,
    set_deterministic,
    to_device,
    use_threads,
)
from aufacs.engine.distributed import (
    DistributedContext,
    buffers_kept,
    process_group,
    split_batch,
)
from aufacs.engine.logs import CsvLog, drop_rows_after
from aufacs.engine.model_spec import write_model_spec
from aufacs.engine.optimizer import make_optimizer
from aufacs.engine.recipes import lr_factor
from aufacs.engine.runs import (
    CONFIG_FILE,
    EPOCHS_FILE,
    ITERATIONS_FILE,
    build_run_model,
    check_run_folders,
    data_kind,
    fold_split,
    load_run_config,
    locked_run_folder,
    make_dataset,
    write_resources,
)
from aufacs.models import AUModel
from aufacs.models.contract import refuse_broken
from aufacs.models.jaa_net.branches import set_branch_schedule


class Trainer:
    """The state of one training run and the loop over its epochs."""

    def __init__(self, config: TrainConfig, context: DistributedContext) -> None:
        self.context = context
        cache = AlignedCache.open(cache_folder(config.data, config.cache))
        kind = data_kind(config, cache)
        self.device = resolve_device(config.device, context.local_rank)
        self.choices = device_choices(self.device, config.amp)
        self.amp = self.choices.amp
        seed_everything(config.seed)
        set_deterministic(config.deterministic, self.device)
        model = build_run_model(config, cache)
        self.config = config = resolve_config(config, model, kind)
        self.out = Path(config.out)
        self._load_training_data(cache, model, kind)
        #: The bare model; ``self.model`` is the same, or its DDP wrapper while training.
        self.raw_model = model.to(self.device)
        if self.choices.channels_last:
            self.raw_model = self.raw_model.to(memory_format=torch.channels_last)
        set_branch_schedule(self.raw_model, self.choices.branch_schedule)
        self.model: nn.Module = self.raw_model
        self.optimizer = make_optimizer(self.raw_model, config)
        factor = lr_factor(
            config.schedule,
            iters_per_epoch=self.steps,
            total_iters=self.steps * config.epochs,
            step_epochs=config.lr_step_epochs,
            gamma=config.lr_gamma,
        )
        self.scheduler = LambdaLR(self.optimizer, factor)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == torch.float16)
        self.epoch = 0
        #: Seconds of each step of the last epoch, data loading included.
        self.step_seconds: list[float] = []

    def _load_training_data(self, cache: AlignedCache, model: AUModel, kind: str) -> None:
        """This process's share of the fold's training frames, the sampler that shuffles
        them, the AU class weights and the number of steps per epoch."""
        config, context = self.config, self.context
        share = config.micro_batches * context.world
        if config.batch_size % share:
            raise AufacsError(
                f"batch_size {config.batch_size} must be divisible by micro_batches x processes "
                f"= {share}"
            )
        split = fold_split(cache, kind, config.fold)
        self.dataset = make_dataset(
            cache, split.train, model, train=True, flip=config.flip, seed=config.seed
        )
        rates = occurrence_rates(self.dataset.labels)
        weights = au_weights(rates, config.au_weights, cache.aus.aus)
        self.au_weights = torch.as_tensor(weights, dtype=torch.float32, device=self.device)
        self.sampler = DistributedSampler(
            self.dataset,
            num_replicas=context.world,
            rank=context.rank,
            shuffle=True,
            seed=config.seed,
            drop_last=True,
        )
        self.loader = batch_loader(
            self.dataset,
            config.batch_size // context.world,
            sampler=self.sampler,
            drop_last=True,
            num_workers=config.num_workers,
            pin_memory=self.choices.pin_memory,
        )
        self.steps = min(len(self.loader), config.max_steps_per_epoch or len(self.loader))
        if self.steps == 0:
            raise AufacsError(
                f"fold {config.fold} has {len(self.dataset)} training frames, fewer than one "
                f"batch of {config.batch_size}; lower batch_size"
            )

    def restore(self) -> None:
        """Continue after the last checkpoint in the run folder, if there is one."""
        saved = checkpoint_paths(self.out)
        if not saved:
            return
        state = load_checkpoint(saved[max(saved)])
        self.raw_model.load_state_dict(state["model"])
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
            "config": config_to_dict(self.config),
            "model": self.raw_model.state_dict(),
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
        config, main = self.config, self.context.main
        if self.context.world > 1:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.raw_model, device_ids=device_ids)
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
                    epochs.write(
                        {
                            "epoch": self.epoch,
                            **means,
                            "seconds": seconds,
                            "samples_per_s": samples / seconds,
                        }
                    )
                    path = self.save()
                    self.write_resources()
                    if config.progress:
                        done = f"epoch {self.epoch}/{config.epochs}: loss {means['loss']:.4f}"
                        say(f"{done}, {seconds:.0f} s, saved {path}")
                self.context.barrier()
        finally:
            iterations.close()
            epochs.close()

    def train_epoch(self, epoch: int, log: CsvLog | None) -> dict[str, float]:
        """One epoch (1-based number ``epoch``); returns the mean of the loss and each part."""
        self.model.train()
        self.sampler.set_epoch(epoch - 1)
        self.dataset.set_epoch(epoch - 1)
        sums: dict[str, float] = {}
        bar = tqdm(
            total=self.steps,
            desc=f"epoch {epoch}/{self.config.epochs}",
            unit="step",
            disable=not (self.config.progress and self.context.main),
            leave=False,
        )
        self.step_seconds = []
        tick = time.perf_counter()
        with bar:
            for iteration, batch in enumerate(self.loader, start=1):
                if iteration > self.steps:
                    break
                parts = self.checked_step(batch, epoch, iteration)
                for name, value in parts.items():
                    sums[name] = sums.get(name, 0.0) + value
                if log is not None:
                    lr = self.optimizer.param_groups[0]
                    log.write(
                        {
                            "epoch": epoch,
                            "iteration": iteration,
                            "step": (epoch - 1) * self.steps + iteration,
                            "lr": lr["lr"] / lr["lr_mult"],
                            **parts,
                        }
                    )
                self.scheduler.step()
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                self.step_seconds.append(time.perf_counter() - tick)
                tick = time.perf_counter()
                bar.update()
                bar.set_postfix(loss=f"{parts['loss']:.4f}")
        return {name: total / self.steps for name, total in sums.items()}

    def write_resources(self) -> Path:
        """Record the last epoch's step seconds and peak memory (``resources.json``)."""
        measured = {
            "epoch": self.epoch,
            "train_frames": len(self.dataset),
            "steps_per_epoch": len(self.loader),
            "step_seconds": [round(s, 4) for s in self.step_seconds],
        }
        return write_resources(self.out, self.config, self.raw_model.stage, self.device, measured)

    def checked_step(
        self, batch: dict[str, torch.Tensor], epoch: int, iteration: int
    ) -> dict[str, float]:
        """:meth:`train_step` on ``batch`` moved to the device; running out of memory stops
        the run with AufacsError naming the batch size."""
        try:
            return self.train_step(to_device(batch, self.device), epoch, iteration)
        except RuntimeError as error:  # torch.cuda.OutOfMemoryError is one
            if not any(s in str(error).lower() for s in ("out of memory", "allocate memory")):
                raise
        raise AufacsError(
            f"training {self.config.model} ran out of memory on {self.device} at batch size "
            f"{self.config.batch_size}; lower batch_size, or split each batch with micro_batches"
        )

    def train_step(
        self, batch: dict[str, torch.Tensor], epoch: int, iteration: int
    ) -> dict[str, float]:
        """Forward and backward over the micro-batches, then one optimiser step.

        Returns the loss and its parts averaged over micro-batches (and context). A
        non-finite value stops the run before the step, with AufacsError.
        """
        parts_per_batch = self.config.micro_batches
        self.optimizer.zero_grad(set_to_none=True)
        totals: torch.Tensor | None = None
        names: list[str] = []
        for index, piece in enumerate(split_batch(batch, parts_per_batch)):
            last = index == parts_per_batch - 1
            sync = (
                self.model.no_sync()
                if isinstance(self.model, DistributedDataParallel) and not last
                else contextlib.nullcontext()
            )
            with sync, buffers_kept(self.raw_model, index > 0):
                with autocast(self.device, self.amp):
                    output = self.model(piece)
                    loss, parts = self.raw_model.loss(output, piece, self.au_weights)
                self.scaler.scale(loss / parts_per_batch).backward()
            named = {"loss": loss.detach(), **{k: v for k, v in parts.items() if k != "total"}}
            names = list(named)
            values = torch.stack([v.float() for v in named.values()]) / parts_per_batch
            totals = values if totals is None else totals + values
        if self.context.world > 1:
            dist.all_reduce(totals)
            totals /= self.context.world
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

    Checks the configuration first (:func:`check_config`; a plug-in model also against the
    model contract, :func:`aufacs.models.contract.refuse_broken`), resumes after the last checkpoint
    of the run folder if there is one, and trains to ``epochs``. Under ``torchrun`` every
    process calls this; rank 0 writes.
    """
    check_config(config)
    refuse_broken(config.model, **config.model_options)
    context = DistributedContext.from_env()
    choices = device_choices(resolve_device(config.device, context.local_rank), config.amp)
    check_run_folders(config)  # refuse before the lock creates anything
    with process_group(context, choices), locked_run_folder(run_folder(config), context):
        check_run_folders(config)
        use_threads(config.threads, announce=context.main)
        if context.main:
            say(choices.summary())
        trainer = Trainer(config, context)
        out = trainer.out
        if (out / CONFIG_FILE).is_file():
            check_resumable(load_run_config(out), trainer.config)
        if context.main:
            set_aside_unreadable(out)
        context.barrier()
        trainer.restore()
        if context.main:
            save_config(trainer.config, out / CONFIG_FILE)
            write_model_spec(out, trainer.config, trainer.raw_model)  # what predict needs
            drop_rows_after(out / ITERATIONS_FILE, trainer.epoch)
            drop_rows_after(out / EPOCHS_FILE, trainer.epoch)
        context.barrier()
        trainer.run()
    return out
