"""Data-parallel training: a process's place in a torchrun job, and DDP's micro-batch twin."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from aufacs.engine.device import DeviceChoices


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in a ``torchrun`` job (rank 0 of 1 when run alone)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> DistributedContext:
        return cls(
            rank=int(os.environ.get("RANK", 0)),
            world=int(os.environ.get("WORLD_SIZE", 1)),
            local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        )

    @property
    def main(self) -> bool:
        return self.rank == 0

    def from_main(self, value: Any) -> Any:
        """``value`` as the main process (rank 0) has it, in every process of the job."""
        if self.world == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


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


@contextlib.contextmanager
def process_group(context: DistributedContext, choices: DeviceChoices) -> Iterator[None]:
    """Inside the block, this process belongs to its torchrun job's process group (the
    backend of ``choices``: nccl on CUDA, gloo on CPU); nothing happens for a single process or
    a group already started."""
    if context.world == 1 or dist.is_initialized():
        yield
        return
    if choices.device.type == "cuda":
        torch.cuda.set_device(context.local_rank)
    dist.init_process_group(choices.backend)
    try:
        yield
    finally:
        dist.destroy_process_group()
