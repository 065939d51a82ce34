"""The study's size presets: the synthetic data set, the face size, each model's training and
the work of the later notebooks, from a smoke test to the published recipes."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aufacs.data.synthetic import SynthConfig
from aufacs.models import model_options
from aufacs.models.registry import builtin_models, image_size_option


@dataclass(frozen=True)
class ModelPlan:
    """How one model is trained in a preset: ``epochs``, ``batch_size``, ``lr``,
    ``optimizer`` (``"sgd"`` or ``"adamw"``) and ``schedule`` (``"step"``, ``"cosine"`` or
    ``"constant"``; each None: the recipe's), ``image_size`` (input side in pixels, None: the
    model's default), builder ``options``, ``max_steps_per_epoch`` (None: every batch) and
    ``stages``: training stages run one after the other, the second starting from the first's
    last checkpoint (ME-GraphAU's ``(1, 2)``: option ``stage1_weights``); empty: one run as
    ``options`` say."""

    epochs: int | None
    batch_size: int | None
    lr: float | None = None
    optimizer: str | None = None
    schedule: str | None = None
    image_size: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    max_steps_per_epoch: int | None = None
    stages: tuple[int, ...] = ()


@dataclass(frozen=True)
class Preset:
    """A study size: the synthetic data set, the aligned-face size, each built-in model's
    training, the training of a plug-in model (``plugin``: its recipe where the plan says
    None, its ``image_size`` option where it takes one; ``docs/your_model.md``), and the work
    of the later notebooks (heatmap samples, bootstrap replicates, speed)."""

    synth: SynthConfig
    aligned_size: int
    models: Mapping[str, ModelPlan]
    plugin: ModelPlan
    heatmap_samples: int
    score_samples: int
    n_boot: int
    speed_batch: int
    speed_repeats: int
    description: str


#: Models without ImageNet weights on a machine like this one start from random weights.
RANDOM_INIT = {"pretrained": None}

PRESETS: dict[str, Preset] = {
    "cpu": Preset(
        synth=SynthConfig(subjects=12, tasks=4, frames_per_task=40),
        aligned_size=72,
        models={
            # lambda_refine 0.1 (published 2e-4) keeps the refined attention near its
            # landmark-placed start in a 5-epoch run (docs/training_experiments.md)
            "jaa_net": ModelPlan(
                epochs=5,
                batch_size=8,
                image_size=64,
                options={"unit_dim": 4, "lambda_refine": 0.1},
            ),
            "eac_net": ModelPlan(
                epochs=10,
                batch_size=16,
                lr=1e-3,
                optimizer="adamw",
                schedule="cosine",
                image_size=64,
                options={**RANDOM_INIT, "width_divisor": 4},
            ),
            "me_graph_au": ModelPlan(
                epochs=6,
                batch_size=16,
                lr=1e-3,
                image_size=64,
                options={**RANDOM_INIT, "backbone": "resnet18"},
            ),
        },
        plugin=ModelPlan(epochs=None, batch_size=None, image_size=64),
        heatmap_samples=4,
        score_samples=48,
        n_boot=1000,
        speed_batch=8,
        speed_repeats=5,
        description="the default: synthetic data and small models that train on 2 CPU cores; "
        "EAC-Net and ME-GraphAU start from random weights (pretrained=None: no ImageNet "
        "weights here)",
    ),
    "smoke": Preset(
        synth=SynthConfig(subjects=6, tasks=2, frames_per_task=8),
        aligned_size=40,
        models={
            "jaa_net": ModelPlan(
                epochs=2,
                batch_size=4,
                image_size=32,
                options={"unit_dim": 2},
                max_steps_per_epoch=2,
            ),
            "eac_net": ModelPlan(
                epochs=2,
                batch_size=4,
                image_size=32,
                options={**RANDOM_INIT, "width_divisor": 8},
                max_steps_per_epoch=2,
            ),
            "me_graph_au": ModelPlan(
                epochs=1,
                batch_size=4,
                options={**RANDOM_INIT, "backbone": "resnet18"},
                max_steps_per_epoch=1,
            ),
        },
        plugin=ModelPlan(epochs=2, batch_size=4, image_size=32, max_steps_per_epoch=2),
        heatmap_samples=2,
        score_samples=4,
        n_boot=50,
        speed_batch=2,
        speed_repeats=1,
        description="the smallest run of every notebook, for tests (numbers mean nothing)",
    ),
    "paper": Preset(
        synth=SynthConfig(),
        aligned_size=200,
        models={
            "jaa_net": ModelPlan(epochs=None, batch_size=None),
            "eac_net": ModelPlan(epochs=None, batch_size=None, options={"pretrained": "imagenet"}),
            "me_graph_au": ModelPlan(
                epochs=None, batch_size=None, options={"pretrained": "imagenet"}, stages=(1, 2)
            ),
        },
        plugin=ModelPlan(epochs=None, batch_size=None),
        heatmap_samples=6,
        score_samples=64,
        n_boot=1000,
        speed_batch=32,
        speed_repeats=20,
        description="the published recipes at full size, ME-GraphAU in both stages (ImageNet "
        "weights, a GPU, real data)",
    ),
}


def adjusted_preset(
    preset: Preset, models: Sequence[str], *, epochs: int | None, random_init: bool
) -> Preset:
    """``preset`` with the plans of the study's ``models`` (a plug-in gets the preset's
    ``plugin`` plan, without the image size where it has no ``image_size`` option), each
    trained for ``epochs`` (None: the plan's) and, with ``random_init``, each that takes
    ImageNet weights started from random ones."""

    def adjusted(model: str) -> ModelPlan:
        plan = preset.models[model] if model in builtin_models() else preset.plugin
        if image_size_option(model) is None:
            plan = dataclasses.replace(plan, image_size=None)
        options = dict(plan.options)
        if random_init and "pretrained" in model_options(model):
            options.update(RANDOM_INIT)
        return dataclasses.replace(plan, epochs=epochs or plan.epochs, options=options)

    return dataclasses.replace(preset, models={model: adjusted(model) for model in models})
