"""Reading ME-GraphAU weights: checkpoint files, ``module.`` prefixes and the official key names.

Official checkpoints (CVI-SZU/ME-GraphAU ``train_stage{1,2}.py``, and the released
``MEFARG_resnet50_*.pth``) are dicts with a ``state_dict`` entry whose keys follow the
official module tree (``head.class_linears.3.fc.weight``, ``head.gnn.U1.weight`` ...).
:func:`convert_official_state_dict` renames them to this package's tree:

=======================================  ==========================================
official                                 aufacs
=======================================  ==========================================
``backbone.*``, ``global_linear.*``      unchanged
``head.class_linears.{k}.{fc,bn}.*``     ``afg.{fc,bn}.*`` (the N blocks concatenated)
``head.sc``                              ``sc``
``head.gnn.{U,V,bnv}.*`` (stage 1)       ``gnn.{U,V,bnv}.*``
``head.gnn.{A..V,bnv,bne}{1,2}.*``       ``gnn.layers.{0,1}.{A..V,bnv,bne}.*``
``head.edge_extractor.{FAM,ARM}.*``      ``gem.{fam,arm}.*``
``head.edge_extractor.{edge_proj,bn}.*`` ``gem.{edge_proj,bn}.*``
``head.edge_fc.*``                       ``edge_fc.*``
=======================================  ==========================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch

from aufacs.core.errors import AufacsError
from aufacs.models.backbones import load_weight_file

StateDict = dict[str, torch.Tensor]

_GATED_LAYER_KEY = re.compile(r"^head\.gnn\.(U|V|A|B|E|bnv|bne)([12])\.")
_CLASS_LINEAR_KEY = re.compile(r"^head\.class_linears\.(\d+)\.((?:fc|bn)\.\w+)$")
_RENAMES: tuple[tuple[str, str], ...] = (
    ("head.edge_extractor.FAM.", "gem.fam."),
    ("head.edge_extractor.ARM.", "gem.arm."),
    ("head.edge_extractor.", "gem."),
    ("head.edge_fc.", "edge_fc."),
    ("head.gnn.", "gnn."),
)


def read_state_dict(path: str | Path) -> StateDict:
    """The state dict stored in ``path``: a bare state dict or a checkpoint dict holding one
    under ``state_dict`` or ``model``; ``module.`` prefixes (DataParallel) are removed."""
    return unwrap_state_dict(load_weight_file(path, "a ME-GraphAU checkpoint"))


def unwrap_state_dict(content: Mapping) -> StateDict:
    """A bare state dict from a state dict or a checkpoint dict (``state_dict`` / ``model``
    entry), without DataParallel's ``module.`` prefixes."""
    for key in ("state_dict", "model"):
        if isinstance(content.get(key), Mapping):
            content = content[key]
            break
    return {key.removeprefix("module."): value for key, value in content.items()}


def is_official_state_dict(state: Mapping[str, torch.Tensor]) -> bool:
    """Whether ``state`` uses the official key names (its head lives under ``head.``)."""
    return any(key.startswith("head.") for key in state)


def convert_official_state_dict(state: Mapping[str, torch.Tensor]) -> StateDict:
    """Rename an official ResNet ME-GraphAU state dict (stage 1 or 2) to aufacs' key names
    (table in the module docstring); the N per-AU class linears are concatenated in AU order.
    Raises AufacsError for a ``head.`` key it does not know (e.g. an OpenGraphAU model)."""
    converted: StateDict = {}
    class_linears: dict[str, dict[int, torch.Tensor]] = {}
    for key, value in unwrap_state_dict(state).items():
        match = _CLASS_LINEAR_KEY.match(key)
        if match:
            class_linears.setdefault(match[2], {})[int(match[1])] = value
        elif key == "head.sc":
            converted["sc"] = value
        elif _GATED_LAYER_KEY.match(key):
            new_key = _GATED_LAYER_KEY.sub(lambda m: f"gnn.layers.{int(m[2]) - 1}.{m[1]}.", key)
            converted[new_key] = value
        elif key.startswith("head."):
            rule = next((rule for rule in _RENAMES if key.startswith(rule[0])), None)
            if rule is None:
                raise AufacsError(
                    f"official checkpoint key {key!r} is not part of a ResNet ME-GraphAU"
                )
            old, new = rule
            converted[new + key.removeprefix(old)] = value
        else:
            converted[key] = value
    for name, per_au in class_linears.items():
        ordered = [per_au[k] for k in sorted(per_au)]
        is_counter = name.endswith("num_batches_tracked")
        converted[f"afg.{name}"] = ordered[0] if is_counter else torch.cat(ordered)
    return converted
