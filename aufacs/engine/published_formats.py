"""The weight formats ``aufacs import`` reads, told apart by their keys, as aufacs state dicts.

:func:`read_weights` takes the loaded content of the files and returns :class:`Weights`: the
model they are for, its builder options the tensors imply, the AU count, and every tensor
under aufacs's key names. :func:`describe` says in a few words what a file holds, for the
one-sentence refusals.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from aufacs.core.errors import AufacsError
from aufacs.engine.checkpoints import CHECKPOINT_FORMAT
from aufacs.models.jaa_net.official import (
    OFFICIAL_MODULES,
    convert_official_module,
    is_version2_local_net,
    official_module,
    official_shapes,
)
from aufacs.models.me_graph_au.checkpoints import (
    convert_official_state_dict,
    unwrap_state_dict,
)
from aufacs.models.registry import plugin_package

StateDict = dict[str, torch.Tensor]
#: Builder options of aufacs checkpoints that name files rather than describe the network.
_FILE_OPTIONS = ("pretrained", "stage1_weights")
#: A top-level module of each aufacs model's state dict that the others lack.
_AUFACS_ROOTS = {"jaa_net": "region_learning", "me_graph_au": "afg", "eac_net": "trunk"}
_MODULE_FILE = re.compile(rf"(?P<module>{'|'.join(OFFICIAL_MODULES)})(_(?P<epoch>\d+))?\.pth?")


@dataclass
class Weights:
    """Weights read from files: for ``model`` (a registered name), described by ``source``,
    ``state`` under aufacs's key names, the builder ``options`` they imply, ``num_aus`` (None:
    not told by the files), the ``epoch`` the files name, and which file gave each tensor
    (``origin``; default the first file), what each file holds (``holds``) and which told
    the AU count (``au_file``); ``official``: in the official repositories' format, whose
    names say their fold (:mod:`aufacs.engine.fold_names`)."""

    model: str
    source: str
    state: StateDict
    files: list[Path]
    options: dict[str, Any]
    num_aus: int | None
    epoch: int | None = None
    origin: dict[str, Path] = field(default_factory=dict)
    holds: dict[Path, str] = field(default_factory=dict)
    au_source: Path | None = None
    official: bool = False

    def file_of(self, key: str) -> Path:
        """The file tensor ``key`` came from."""
        return self.origin.get(key, self.files[0])

    @property
    def au_file(self) -> Path:
        return self.au_source or self.files[0]


def read_weights(contents: Mapping[Path, Mapping], model: str | None = None) -> Weights:
    """The weights in ``contents`` (file -> what torch loaded from it): JAA-Net's six official
    module files, or one official ME-GraphAU ResNet checkpoint, aufacs checkpoint or aufacs
    state dict (with ``model`` a plug-in, that plug-in's state dict). ``model``: the model they
    must be for (None: any). Refuses anything else."""
    kinds = {path: classify(content) for path, content in contents.items()}
    if len(contents) > 1 or set(kinds.values()) & {"jaa_official", "jaa_v2"}:
        weights = _official_jaa(contents)
    else:
        (path, content), kind = next(iter(contents.items())), next(iter(kinds.values()))
        if kind == "aufacs_checkpoint":
            weights = _own_checkpoint(path, content)
        elif kind == "me_official":
            weights = _official_me_graph_au(path, content)
        elif kind in ("jaa_net", "me_graph_au", "eac_net"):
            state = _tensors(unwrap_state_dict(content))
            weights = _own(path, kind, state, {}, None, f"aufacs {kind} weights")
        elif model is not None and plugin_package(model) is not None:
            state = _tensors(unwrap_state_dict(content))  # a plug-in's saved state dict
            weights = _own(path, model, state, {}, None, f"{model} weights")
        else:
            raise AufacsError(
                f"{path.name} holds {describe(content)}, which is neither JAA-Net's six module "
                "files, an official ME-GraphAU ResNet checkpoint, nor aufacs weights"
            )
    if model is not None and weights.model != model:
        names = ", ".join(p.name for p in weights.files)
        verb = "holds" if len(weights.files) == 1 else "hold"
        raise AufacsError(f"{names} {verb} {weights.source}, not {model} weights")
    return weights


def classify(content: Mapping) -> str:
    """What ``content`` is: ``jaa_official`` (one of JAA-Net's six module files), ``jaa_v2``,
    ``me_official``, ``aufacs_checkpoint``, aufacs weights of a model (its name), or
    ``unknown``."""
    if content.get("format") == CHECKPOINT_FORMAT and isinstance(content.get("model"), Mapping):
        return "aufacs_checkpoint"
    state = _tensors(unwrap_state_dict(content))
    roots = {key.split(".", 1)[0] for key in state}
    if state and official_module(state):
        return "jaa_official"
    if is_version2_local_net(state):
        return "jaa_v2"
    if "head" in roots and "backbone" in roots:
        return "me_official"
    for name, root in (
        ("jaa_net", "region_learning"),
        ("me_graph_au", "afg"),
        ("eac_net", "trunk"),
    ):
        if root in roots:
            return name
    return "unknown"


def describe(content: Mapping) -> str:
    """A few words on what a loaded weight file holds."""
    kind = classify(content)
    state = _tensors(unwrap_state_dict(content))
    if kind == "jaa_official":
        module = official_module(state)
        return f"JAA-Net's {OFFICIAL_MODULES[module]} module ({module})"
    if kind == "jaa_v2":
        return "JAA-Net v2's local AU net (aufacs implements JAA-Net v1)"
    if kind == "me_official":
        if _is_swin(state):
            return "an official ME-GraphAU checkpoint with a Swin Transformer backbone"
        stage = 2 if any(k.startswith("head.edge_extractor.") for k in state) else 1
        aus = state["head.sc"].shape[0] if "head.sc" in state else "?"
        return f"an official ME-GraphAU ResNet stage-{stage} checkpoint for {aus} AUs"
    if kind == "aufacs_checkpoint":
        return f"an aufacs {content.get('config', {}).get('model', '?')} training checkpoint"
    if kind != "unknown":
        return f"aufacs {kind} weights"
    keys = ", ".join(repr(k) for k in list(state)[:2])
    return f"{len(state)} tensors under keys such as {keys}" if state else "no tensors"


def _tensors(content: Mapping) -> StateDict:
    return {k: v for k, v in content.items() if isinstance(k, str) and torch.is_tensor(v)}


def _official_jaa(contents: Mapping[Path, Mapping]) -> Weights:
    """JAA-Net's six official module files -> one aufacs JAA-Net state dict."""
    by_module: dict[str, tuple[Path, StateDict]] = {}
    for path, content in contents.items():
        state = _tensors(content)
        module = official_module(state) if state else None
        if module is None:
            raise AufacsError(
                f"{path.name} holds {describe(content)}, not one of JAA-Net's six module files "
                f"({', '.join(OFFICIAL_MODULES)})"
            )
        named = _MODULE_FILE.fullmatch(path.name)
        if named and named["module"] != module:
            raise AufacsError(
                f"{path.name} is named as JAA-Net's {named['module']} module but holds its "
                f"{OFFICIAL_MODULES[module]} module ({module})"
            )
        if module in by_module:
            raise AufacsError(
                f"{path.name} and {by_module[module][0].name} both hold JAA-Net's {module} "
                "module; give the six files of one snapshot"
            )
        by_module[module] = (path, state)
    missing = [m for m in OFFICIAL_MODULES if m not in by_module]
    if missing:
        raise AufacsError(
            f"JAA-Net's published weights are six files; {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} missing from "
            f"{', '.join(p.name for p in contents)}"
        )
    return _assemble_jaa(by_module)


def _assemble_jaa(by_module: Mapping[str, tuple[Path, StateDict]]) -> Weights:
    state: StateDict = {}
    origin: dict[str, Path] = {}
    for module, (path, module_state) in by_module.items():
        try:
            converted = convert_official_module(module, module_state)
        except AufacsError as error:
            raise AufacsError(f"{path.name}: {error}") from None
        state.update(converted)
        origin.update(dict.fromkeys(converted, path))
    try:
        unit_dim, num_aus = official_shapes({m: s for m, (_, s) in by_module.items()})
    except KeyError as error:
        raise AufacsError(f"the JAA-Net module files lack the tensor {error}") from None
    epochs = {_file_epoch(path) for path, _ in by_module.values()}
    if len(epochs) > 1:
        raise AufacsError(
            f"the six JAA-Net files come from different epochs ({sorted(epochs, key=str)}); "
            "give the files of one snapshot"
        )
    return Weights(
        model="jaa_net",
        source="the official JAA-Net v1 weights (six module files)",
        state=state,
        files=[path for path, _ in by_module.values()],
        options={"unit_dim": unit_dim},
        num_aus=num_aus,
        epoch=epochs.pop(),
        origin=origin,
        holds={
            path: f"{module}: JAA-Net's {OFFICIAL_MODULES[module]} module"
            for module, (path, _) in by_module.items()
        },
        au_source=by_module["au_net"][0],
        official=True,
    )


def _file_epoch(path: Path) -> int | None:
    match = _MODULE_FILE.fullmatch(path.name)
    return int(match["epoch"]) if match and match["epoch"] else None


def _official_me_graph_au(path: Path, content: Mapping) -> Weights:
    """An official ME-GraphAU ResNet checkpoint (stage 1 or 2) -> aufacs key names."""
    state = _tensors(unwrap_state_dict(content))
    if _is_swin(state):
        raise AufacsError(
            f"{path.name} holds {describe(content)}; aufacs implements ME-GraphAU with a "
            "ResNet-50 backbone only"
        )
    try:
        converted = convert_official_state_dict(state)
    except AufacsError as error:
        raise AufacsError(f"{path.name} holds {describe(content)}, but {error}") from None
    epoch = content.get("epoch")
    epoch = epoch if isinstance(epoch, int) and epoch > 0 else None
    weights = _own(path, "me_graph_au", converted, {}, epoch, describe(content))
    return dataclasses.replace(weights, official=True)


def _own_checkpoint(path: Path, content: Mapping) -> Weights:
    """An aufacs training checkpoint: the model and options its configuration names."""
    config = content.get("config") or {}
    model = config.get("model")
    if not isinstance(model, str):
        raise AufacsError(f"{path.name} is an aufacs checkpoint without a model name")
    options = {
        k: v for k, v in (config.get("model_options") or {}).items() if k not in _FILE_OPTIONS
    }
    state = _tensors(content["model"])
    epoch = content.get("epoch") if isinstance(content.get("epoch"), int) else None
    return _own(path, model, state, options, epoch, describe(content))


def _own(
    path: Path, model: str, state: StateDict, options: dict, epoch: int | None, source: str
) -> Weights:
    """Weights of one file already under aufacs's key names."""
    options = {**_implied_options(model, state), **options}
    aus = {"jaa_net": ("au_net.1.weight", 2), "me_graph_au": ("sc", 1)}.get(model)
    num_aus = state[aus[0]].shape[0] // aus[1] if aus and aus[0] in state else None
    return Weights(model, source, state, [path], options, num_aus, epoch, holds={path: source})


def _implied_options(model: str, state: StateDict) -> dict[str, Any]:
    """The builder options the tensors of an aufacs state dict imply."""
    if model == "jaa_net" and "region_learning.0.conv.weight" in state:
        return {"unit_dim": state["region_learning.0.conv.weight"].shape[0] // 4}
    if model != "me_graph_au":
        return {}
    options: dict[str, Any] = {"stage": 2 if any(k.startswith("gem.") for k in state) else 1}
    if "backbone.layer1.0.conv3.weight" not in state:  # basic blocks: a ResNet-18 or -34
        options["backbone"] = "resnet18"
    return options


def _is_swin(state: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith(("backbone.patch_embed.", "backbone.layers.")) for k in state)
