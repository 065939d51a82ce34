"""Every device-dependent choice comes from one place, and a CUDA machine can be described to it.

No GPU is needed: :func:`device_choices` takes the facts of a device (name, native bf16) as an
argument, so these tests hand it those of CUDA cards and check what a run on them would do.
"""

from __future__ import annotations

import pytest
import torch

from aufacs.core.errors import AufacsError
from aufacs.engine.device import DeviceFacts, device_choices, device_facts
from aufacs.models.jaa_net import BranchStack, build_jaa_net
from aufacs.models.jaa_net.branches import set_branch_schedule

H100 = DeviceFacts("NVIDIA H100 80GB HBM3", bf16=True, memory_gib=79.2)
V100 = DeviceFacts("Tesla V100-SXM2-16GB", bf16=False, memory_gib=15.8)
CUDA = torch.device("cuda", 0)
CPU = torch.device("cpu")


def test_a_bf16_gpu_trains_in_bf16_channels_last_with_nccl_pinned_memory_and_grouped_branches():
    choices = device_choices(CUDA, "auto", H100)
    assert choices.amp == torch.bfloat16
    assert choices.channels_last and choices.pin_memory
    assert choices.backend == "nccl"
    assert choices.branch_schedule == "grouped"


def test_a_gpu_without_bf16_falls_back_to_fp16_and_can_be_told_otherwise():
    assert device_choices(CUDA, "auto", V100).amp == torch.float16
    assert device_choices(CUDA, "off", V100).amp is None
    assert device_choices(CUDA, "bf16", H100).amp == torch.bfloat16


def test_the_cpu_trains_in_float32_with_gloo_and_branches_one_after_the_other():
    choices = device_choices(CPU, "auto", DeviceFacts("AMD EPYC", bf16=False))
    assert choices.amp is None
    assert not choices.channels_last and not choices.pin_memory
    assert choices.backend == "gloo"
    assert choices.branch_schedule == "per_branch"


def test_fp16_on_the_cpu_is_refused_in_a_sentence():
    with pytest.raises(AufacsError, match="needs a CUDA device"):
        device_choices(CPU, "fp16", DeviceFacts("AMD EPYC", bf16=False))


def test_an_unknown_amp_mode_is_refused():
    with pytest.raises(AufacsError, match="amp must be one of"):
        device_choices(CPU, "fp8", DeviceFacts("AMD EPYC", bf16=False))


def test_the_summary_names_the_device_and_every_choice():
    line = device_choices(CUDA, "auto", H100).summary()
    for word in ("cuda:0", "H100", "bf16", "channels-last", "nccl", "pinned", "grouped"):
        assert word in line


def test_this_machines_cpu_is_described_by_its_model_name():
    facts = device_facts(CPU)
    assert facts.name and isinstance(facts.bf16, bool)


def test_the_branch_schedule_reaches_every_auto_stack_and_spares_a_chosen_one():
    model = build_jaa_net(crop_size=32, unit_dim=1)
    stacks = [m for m in model.modules() if isinstance(m, BranchStack)]
    stacks[0].schedule = "per_branch"
    set_branch_schedule(model, "grouped")
    assert stacks[0].schedule == "per_branch"
    assert {s.schedule for s in stacks[1:]} == {"grouped"}
