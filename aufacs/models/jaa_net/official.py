"""Reading JAA-Net's published weights: the six official module files and their key names.

The official PyTorch code (ZhiwenShao/PyTorch-JAANet ``train_JAAv1.py``) saves one state dict
per module, ``<module>_<epoch>.pth``, for the six modules of :data:`OFFICIAL_MODULES`. Their
per-cell and per-AU modules are held here as one batched module each, so the official tensors
of cells / AUs 0..K-1 are concatenated along their first dimension. Official key (file) ->
aufacs key:

- ``multiscale_feat.{l}.conv`` / ``.bn`` (region_learning) -> ``region_learning.{l}.conv`` /
  ``.norm``;
- ``multiscale_feat.{l}.local_conv_branch{b}.bns.{k}`` / ``.convs.{k}``, cells k ->
  ``region_learning.{l}.branches.{b-1}.norm`` / ``.conv``;
- ``align_feat.feat_extract.{i}`` / ``align_output.{i}`` (align_net) ->
  ``align_net.features.{i}`` / ``align_net.head.{i}``;
- ``local_aus_attention.{k}.{i}`` (local_attention_refine), AUs k -> ``attention_refine.{i}``;
- ``local_aus_branch.{k}.feat_extract.{i}`` (local_au_net), AUs k ->
  ``local_au_net.branches.{i}``;
- ``feat_extract.{i}`` (global_au_feat) -> ``global_au_feat.{i}``;
- ``au_output.{i}`` (au_net) -> ``au_net.{i}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from aufacs.core.errors import AufacsError

StateDict = dict[str, torch.Tensor]

#: The six official modules, in the order ``train_JAAv1.py`` saves them, and what each holds.
OFFICIAL_MODULES: dict[str, str] = {
    "region_learning": "region learning",
    "align_net": "face alignment",
    "local_attention_refine": "attention refinement",
    "local_au_net": "local AU features",
    "global_au_feat": "global features",
    "au_net": "AU output",
}

#: The first key segments of each official module's state dict.
_ROOTS: dict[frozenset[str], str] = {
    frozenset({"multiscale_feat"}): "region_learning",
    frozenset({"align_feat", "align_output"}): "align_net",
    frozenset({"local_aus_attention"}): "local_attention_refine",
    frozenset({"local_aus_branch"}): "local_au_net",
    frozenset({"feat_extract"}): "global_au_feat",
    frozenset({"au_output"}): "au_net",
}

_P = r"\.(?P<p>\w+)"
_LAYER = r"multiscale_feat\.(?P<l>\d+)"
_CELLS = _LAYER + r"\.local_conv_branch(?P<b>[123])\.{}\.(?P<k>\d+)" + _P
#: Per module: (official key pattern, aufacs key template). A pattern with a group ``k``
#: holds slice k of the aufacs tensor; ``b`` is the 1-based partitioned branch.
_RULES: dict[str, tuple[tuple[re.Pattern[str], str], ...]] = {
    "region_learning": (
        (re.compile(_LAYER + r"\.conv" + _P), "region_learning.{l}.conv.{p}"),
        (re.compile(_LAYER + r"\.bn" + _P), "region_learning.{l}.norm.{p}"),
        (re.compile(_CELLS.format("bns")), "region_learning.{l}.branches.{b}.norm.{p}"),
        (re.compile(_CELLS.format("convs")), "region_learning.{l}.branches.{b}.conv.{p}"),
    ),
    "align_net": (
        (re.compile(r"align_feat\.feat_extract\.(?P<i>\d+)" + _P), "align_net.features.{i}.{p}"),
        (re.compile(r"align_output\.(?P<i>\d+)" + _P), "align_net.head.{i}.{p}"),
    ),
    "local_attention_refine": (
        (
            re.compile(r"local_aus_attention\.(?P<k>\d+)\.(?P<i>\d+)" + _P),
            "attention_refine.{i}.{p}",
        ),
    ),
    "local_au_net": (
        (
            re.compile(r"local_aus_branch\.(?P<k>\d+)\.feat_extract\.(?P<i>\d+)" + _P),
            "local_au_net.branches.{i}.{p}",
        ),
    ),
    "global_au_feat": ((re.compile(r"feat_extract\.(?P<i>\d+)" + _P), "global_au_feat.{i}.{p}"),),
    "au_net": ((re.compile(r"au_output\.(?P<i>\d+)" + _P), "au_net.{i}.{p}"),),
}


def official_module(state: Mapping[str, torch.Tensor]) -> str | None:
    """Which of the six official modules ``state`` is the state dict of (None: none of them)."""
    roots = frozenset(key.split(".", 1)[0] for key in state)
    return _ROOTS.get(roots)


def is_version2_local_net(state: Mapping[str, torch.Tensor]) -> bool:
    """Whether ``state`` is JAA-Net v2's local AU net (per-AU outputs), which aufacs lacks."""
    return {key.split(".", 1)[0] for key in state} == {"local_aus_branch", "local_aus_output"}


def convert_official_module(module: str, state: Mapping[str, torch.Tensor]) -> StateDict:
    """One official module's state dict (``module`` a key of :data:`OFFICIAL_MODULES`) under
    aufacs's key names, per-cell and per-AU tensors concatenated in index order. Raises
    AufacsError for a key the official module does not have."""
    slices: dict[str, dict[int, torch.Tensor]] = {}
    for key, value in state.items():
        target, index = _target(module, key)
        slices.setdefault(target, {})[index] = value
    converted: StateDict = {}
    for target, parts in slices.items():
        if sorted(parts) != list(range(len(parts))):
            raise AufacsError(
                f"the {module} weights hold {target} for cells or AUs {sorted(parts)}, not "
                f"0..{len(parts) - 1}"
            )
        ordered = [parts[k] for k in range(len(parts))]
        converted[target] = ordered[0] if ordered[0].dim() == 0 else torch.cat(ordered)
    return converted


def _target(module: str, key: str) -> tuple[str, int]:
    """The aufacs key an official key of ``module`` goes to, and its slice index."""
    for pattern, template in _RULES[module]:
        match = pattern.fullmatch(key)
        if match:
            groups = match.groupdict()
            if "b" in groups:
                groups["b"] = str(int(groups["b"]) - 1)
            return template.format(**groups), int(groups.get("k") or 0)
    raise AufacsError(f"key {key!r} is not part of the official JAA-Net v1 {module} module")


def official_shapes(states: Mapping[str, Mapping[str, torch.Tensor]]) -> tuple[int, int]:
    """(unit_dim, number of AUs) of the six official module state dicts ``states`` (by
    module name), read from the region learning's first convolution and the AU output."""
    unit_dim = states["region_learning"]["multiscale_feat.0.conv.weight"].shape[0] // 4
    return unit_dim, states["au_net"]["au_output.1.weight"].shape[0] // 2
