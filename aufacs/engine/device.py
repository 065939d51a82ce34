"""Where training and evaluation compute: the device, mixed precision, seeding and CPU threads."""

from __future__ import annotations

import contextlib
import os
import platform
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from aufacs.core.console import say
from aufacs.core.errors import AufacsError

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
AMP_MODES: tuple[str, ...] = ("auto", "bf16", "fp16", "off")
#: What the ``amp`` option of training and evaluation accepts (see :func:`resolve_amp`).
AMP_HELP = "mixed precision: auto (bf16 or fp16 on CUDA, off on CPU), bf16, fp16 (CUDA) or off"
#: Environment variables that set the CPU threads of torch (OpenMP) and of BLAS libraries.
THREAD_VARIABLES: tuple[str, ...] = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: What the ``threads`` option of the commands accepts (see :func:`default_threads`).
THREADS_HELP = (
    "CPU threads for torch (default: OMP_NUM_THREADS, else the cores this process may use)"
)


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    """``"auto"``: CUDA when available, else CPU; ``"cuda"`` refuses a machine without one."""
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise AufacsError("device 'cuda' was asked for but torch sees no CUDA device")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def resolve_amp(
    amp: str, device: torch.device, facts: DeviceFacts | None = None
) -> torch.dtype | None:
    """The autocast dtype, None for full precision. ``"auto"``: bf16 on CUDA where supported,
    else fp16; full precision on CPU. ``"bf16"`` also runs on CPU (about 1.6x faster JAA-Net
    training steps on a CPU with AVX-512 BF16, see ``docs/benchmarks.md``); fp16 is CUDA-only.
    ``facts``: what the device can do (None: :func:`device_facts` of ``device``)."""
    if amp not in AMP_MODES:
        raise AufacsError(f"amp must be one of {', '.join(AMP_MODES)}, got {amp!r}")
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if device.type != "cuda":
        if amp == "bf16":
            return torch.bfloat16
        raise AufacsError(f"amp={amp!r} needs a CUDA device; use amp='bf16' or 'off' on {device}")
    facts = facts or device_facts(device)
    if amp == "fp16" or (amp == "auto" and not facts.bf16):
        return torch.float16
    return torch.bfloat16


@dataclass(frozen=True)
class DeviceFacts:
    """What the device-dependent choices depend on: ``name`` (e.g. ``"NVIDIA H100 80GB HBM3"``
    or the CPU model), ``bf16`` (native bfloat16 arithmetic) and ``memory_gib`` (device
    memory, 0 when unknown)."""

    name: str
    bf16: bool
    memory_gib: float = 0.0


def device_facts(device: torch.device) -> DeviceFacts:
    """The facts of ``device`` as torch and ``/proc/cpuinfo`` report them."""
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        return DeviceFacts(
            properties.name, torch.cuda.is_bf16_supported(), properties.total_memory / 2**30
        )
    name, flags = _cpu_info()
    return DeviceFacts(name, bool({"avx512_bf16", "amx_bf16"} & flags))


def _cpu_info() -> tuple[str, set[str]]:
    """The CPU's model name and feature flags (empty where ``/proc/cpuinfo`` is absent)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "CPU", set()
    first_cpu = text.split("\n\n")[0].splitlines()
    fields = dict(line.split(":", 1) for line in first_cpu if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    return fields.get("model name", "CPU"), set(fields.get("flags", "").split())


@dataclass(frozen=True)
class DeviceChoices:
    """Every device-dependent choice of a run, made in one place (:func:`device_choices`):
    the mixed-precision dtype (None: float32), channels-last images and weights, the
    DistributedDataParallel backend, pinned host memory for batches, and how JAA-Net's per-AU
    branches run (:class:`aufacs.models.jaa_net.branches.BranchStack`)."""

    device: torch.device
    facts: DeviceFacts
    amp: torch.dtype | None
    channels_last: bool
    backend: str
    pin_memory: bool
    branch_schedule: str

    def summary(self) -> str:
        """One line for the start of a run."""
        precision = {None: "float32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.amp]
        layout = "channels-last" if self.channels_last else "contiguous"
        pinned = "pinned" if self.pin_memory else "pageable"
        return (
            f"device {self.device} ({self.facts.name}): {precision}, {layout} images, "
            f"{self.backend} backend, {pinned} batches, JAA-Net branches "
            f"{self.branch_schedule.replace('_', ' ')}"
        )


def uses_channels_last(device: torch.device) -> bool:
    """Whether images and weights go channels-last on ``device``: on CUDA, where cuDNN's
    convolutions are faster that way (on CPU only JAA-Net's per-branch stacks use it)."""
    return device.type == "cuda"


def device_choices(
    device: torch.device, amp: str, facts: DeviceFacts | None = None
) -> DeviceChoices:
    """The choices for ``device`` and the ``amp`` option (:func:`resolve_amp`). ``facts``:
    what the device can do (None: :func:`device_facts`); tests pass a CUDA device's here."""
    facts = facts or device_facts(device)
    cuda = device.type == "cuda"
    return DeviceChoices(
        device=device,
        facts=facts,
        amp=resolve_amp(amp, device, facts),
        channels_last=uses_channels_last(device),
        backend="nccl" if cuda else "gloo",
        pin_memory=cuda,
        branch_schedule="grouped" if cuda else "per_branch",
    )


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Mixed precision for a forward pass, or nothing when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """A batch on ``device``; images in channels-last layout on CUDA (:class:`DeviceChoices`)."""
    moved = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    if uses_channels_last(device):
        moved["image"] = moved["image"].contiguous(memory_format=torch.channels_last)
    return moved


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def set_deterministic(deterministic: bool, device: torch.device) -> None:
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = deterministic
        torch.backends.cudnn.benchmark = not deterministic


def default_threads() -> int:
    """CPU threads for torch: ``OMP_NUM_THREADS`` when it is set to a positive number, else the
    cores this process may run on (``os.sched_getaffinity``, which a container or ``taskset``
    narrows; torch's own default counts every core of the machine)."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _checked_threads(count: int) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise AufacsError(f"threads must be a positive integer, got {count!r}")
    return count


def use_threads(threads: int | None, *, announce: bool = True) -> int:
    """Set torch's CPU threads for this process to ``threads`` (None: :func:`default_threads`)
    and return the number; ``announce`` prints it (once per command)."""
    count = default_threads() if threads is None else _checked_threads(threads)
    torch.set_num_threads(count)
    if announce:
        say(f"using {count} CPU thread{'s' if count > 1 else ''}")
    return count


@contextlib.contextmanager
def thread_limit(count: int) -> Iterator[None]:
    """Inside the block, torch in this process and every process started from it (notebook
    kernels, data-loading workers) use ``count`` CPU threads. On a busy machine fewer threads
    than torch's default (one per core) can be several times faster."""
    _checked_threads(count)
    saved_variables = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    saved_threads = torch.get_num_threads()
    os.environ.update({name: str(count) for name in THREAD_VARIABLES})
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(saved_threads)
        for name, value in saved_variables.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
