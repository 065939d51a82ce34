"""Default training recipes: the optimiser, learning rate and schedule each method was
published with.

Every value here is only a default; each one can be overridden in
:class:`aufacs.engine.config.TrainConfig`. Sources (see ``shared/spec``):

- **JAA-Net** (official PyTorch ``train_JAAv1.py``): SGD with Nesterov momentum 0.9, weight
  decay 5e-4, lr 0.01 multiplied by 0.3 every 2 epochs, batch 8, 12 epochs. The attention
  refinement's learning rate is doubled (the model's ``optimizer_param_groups``).
- **ME-GraphAU** (``train_stage1.py`` / ``train_stage2.py``, README): AdamW, betas
  (0.9, 0.999), weight decay 5e-4, per-iteration cosine decay without warm-up, batch 64,
  20 epochs; lr 1e-4 in stage 1 and 1e-5 in stage 2.
- **EAC-Net** (the authors' Theano release): SGD with Nesterov momentum 0.9, lr 1e-4, no
  weight decay, batch 50, constant learning rate. The release counts iterations, not epochs:
  E-Net 6,000 and C-Net 20,000 iterations of 50 images, about 3 and 10 passes over a BP4D
  training fold of ~100,000 frames; those passes are the epoch defaults here (stage
  ``joint``, not in the release, takes the C-Net's).

A plug-in model (:mod:`aufacs.models.plugins`) may declare its recipe beside its builder, as a
dict of :class:`Recipe` fields (``docs/your_model.md``); the fields it leaves out, and the
whole recipe of a plug-in that declares none, come from :data:`PLUGIN_DEFAULT`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from aufacs.core.errors import AufacsError
from aufacs.models.registry import declared_recipe, plugin_package

#: Optimisers the engine builds.
OPTIMIZERS: tuple[str, ...] = ("sgd", "adamw")
#: Learning-rate schedules (functions of the iteration; see :func:`lr_factor`).
SCHEDULES: tuple[str, ...] = ("step", "cosine", "constant")


@dataclass(frozen=True)
class Recipe:
    """How a method is trained.

    ``momentum``: SGD momentum, or AdamW's first-moment decay β1 (β2 is 0.999 throughout).
    ``schedule``: ``"step"`` multiplies the lr by ``gamma`` every ``step_epochs`` epochs;
    ``"cosine"`` decays it per iteration as lr·(1 + cos(π·t / T)) / 2 over all T iterations;
    ``"constant"`` keeps it.
    """

    optimizer: str
    lr: float
    momentum: float
    weight_decay: float
    schedule: str
    batch_size: int
    epochs: int
    nesterov: bool = False
    step_epochs: int = 2
    gamma: float = 0.3


JAA_NET = Recipe(
    optimizer="sgd",
    lr=0.01,
    momentum=0.9,
    weight_decay=5e-4,
    schedule="step",
    batch_size=8,
    epochs=12,
    nesterov=True,
    step_epochs=2,
    gamma=0.3,
)
ME_GRAPH_AU_STAGE1 = Recipe(
    optimizer="adamw",
    lr=1e-4,
    momentum=0.9,
    weight_decay=5e-4,
    schedule="cosine",
    batch_size=64,
    epochs=20,
)
ME_GRAPH_AU_STAGE2 = Recipe(
    optimizer="adamw",
    lr=1e-5,
    momentum=0.9,
    weight_decay=5e-4,
    schedule="cosine",
    batch_size=64,
    epochs=20,
)
EAC_NET_ENET = Recipe(
    optimizer="sgd",
    lr=1e-4,
    momentum=0.9,
    weight_decay=0.0,
    schedule="constant",
    batch_size=50,
    epochs=3,
    nesterov=True,
)
EAC_NET_CNET = Recipe(
    optimizer="sgd",
    lr=1e-4,
    momentum=0.9,
    weight_decay=0.0,
    schedule="constant",
    batch_size=50,
    epochs=10,
    nesterov=True,
)

#: The recipe of a plug-in model that declares none (and the fields a declared one leaves
#: out): AdamW at 1e-3 with cosine decay, batch 32, 10 epochs; a plain choice for a model
#: trained from scratch, not anybody's published recipe.
PLUGIN_DEFAULT = Recipe(
    optimizer="adamw",
    lr=1e-3,
    momentum=0.9,
    weight_decay=5e-4,
    schedule="cosine",
    batch_size=32,
    epochs=10,
)

#: (model name, stage) -> recipe. Stage ``None`` is a model without stages.
RECIPES: dict[tuple[str, int | str | None], Recipe] = {
    ("jaa_net", None): JAA_NET,
    ("me_graph_au", 1): ME_GRAPH_AU_STAGE1,
    ("me_graph_au", 2): ME_GRAPH_AU_STAGE2,
    ("eac_net", "enet"): EAC_NET_ENET,
    ("eac_net", "cnet"): EAC_NET_CNET,
    ("eac_net", "joint"): EAC_NET_CNET,
}


def recipe_for(model: str, stage: int | str | None = None) -> Recipe:
    """The recipe of ``model`` (a registry name) in training ``stage``.

    A built-in model's is the published one of its ``stage``: ME-GraphAU's 1 or 2, EAC-Net's
    ``"enet"``, ``"cnet"`` or ``"joint"``, None for JAA-Net. A plug-in's is the one it
    declares (every stage), completed from :data:`PLUGIN_DEFAULT`, or that default. Raises
    AufacsError for a built-in combination without a recipe and a declared recipe that is
    not one.
    """
    if plugin_package(model) is not None:
        declared = declared_recipe(model)
        return PLUGIN_DEFAULT if declared is None else _declared(model, declared)
    try:
        return RECIPES[(model, stage)]
    except KeyError:
        known = ", ".join(f"{m} stage {s}" if s is not None else m for m, s in RECIPES)
        raise AufacsError(
            f"no training recipe for model {model!r} at stage {stage!r}; recipes exist for {known}"
        ) from None


def recipe_source(model: str) -> str:
    """Where :func:`recipe_for` takes ``model``'s recipe from, as words for a report."""
    package = plugin_package(model)
    if package is None:
        return "the recipe its authors published"
    if declared_recipe(model) is None:
        return (
            f"aufacs's default recipe for plug-in models, since package {package} declares "
            "none (docs/your_model.md)"
        )
    return f"the recipe that package {package} declares"


def _declared(model: str, declared: Mapping[str, Any]) -> Recipe:
    """The recipe a plug-in declares, its missing fields from :data:`PLUGIN_DEFAULT`;
    AufacsError naming the package for an unknown field or a value out of range."""
    names = [f.name for f in fields(Recipe)]
    where = f"the recipe of model {model!r} (package {plugin_package(model)})"
    unknown = sorted(set(declared) - set(names))
    if unknown:
        raise AufacsError(
            f"{where} has unknown field(s) {', '.join(unknown)}; its fields are {', '.join(names)}"
        )
    recipe = Recipe(**{**asdict(PLUGIN_DEFAULT), **declared})
    for name, allowed in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES)):
        if getattr(recipe, name) not in allowed:
            raise AufacsError(
                f"{where} sets {name} {getattr(recipe, name)!r}; expected one of "
                f"{', '.join(allowed)}"
            )
    for name in ("lr", "batch_size", "epochs", "step_epochs"):
        value = getattr(recipe, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise AufacsError(f"{where} sets {name} {value!r}; expected a positive number")
    return recipe


def lr_factor(
    schedule: str, *, iters_per_epoch: int, total_iters: int, step_epochs: int, gamma: float
) -> Callable[[int], float]:
    """The learning-rate multiplier as a function of the 0-based iteration ``t``.

    ``"step"``: γ^⌊epoch / step_epochs⌋ with epoch = ⌊t / iters_per_epoch⌋ (JAA-Net);
    ``"cosine"``: (1 + cos(π·t / total_iters)) / 2 (ME-GraphAU); ``"constant"``: 1.
    """
    if schedule == "step":
        return lambda t: gamma ** ((t // iters_per_epoch) // step_epochs)
    if schedule == "cosine":
        return lambda t: 0.5 * (1.0 + math.cos(math.pi * t / total_iters))
    if schedule == "constant":
        return lambda t: 1.0
    raise AufacsError(f"unknown schedule {schedule!r}; expected one of {', '.join(SCHEDULES)}")
