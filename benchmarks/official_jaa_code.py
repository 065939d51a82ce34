"""The official JAA-Net v1 code itself, imported at run time from a clone the user provides.

``--official-code DIR`` of ``bench_jaa_step`` names a clone of ZhiwenShao/PyTorch-JAANet; its
``network.py`` and ``util.py`` are imported from there under private module names (none of that
code ships with aufacs, and nothing is added to ``sys.path``). :class:`OfficialCode` builds the
six official modules as ``train_JAAv1.py`` does and scores them with ``util.py``'s losses; its
:meth:`~OfficialCode.layout` says where they keep the weights that
:func:`benchmarks.official_jaa_net.load_official` copies from an aufacs model.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import torch
import torch.nn.functional as F
from torch import nn

from aufacs.core.errors import AufacsError
from benchmarks.official_jaa_net import (
    GRAD_ENHANCE,
    LAMBDA_AU,
    LAMBDA_LAND,
    LAMBDA_REFINE,
    OfficialLayout,
    official_groups,
)

#: What the harness uses from each official file.
OFFICIAL_NAMES = {
    "network": (
        "HMRegionLearning",
        "AlignNet",
        "LocalAttentionRefine",
        "LocalAUNetv1",
        "HLFeatExtractor",
        "AUNet",
    ),
    "util": ("au_softmax_loss", "au_dice_loss", "landmark_loss", "attention_refine_loss"),
}


def import_official(folder: Path) -> dict[str, ModuleType]:
    """Import ``network.py`` and ``util.py`` from a PyTorch-JAANet clone at ``folder``, under
    private module names (nothing is added to ``sys.path``)."""
    modules = {}
    for name, needed in OFFICIAL_NAMES.items():
        path = folder / f"{name}.py"
        if not path.is_file():
            raise AufacsError(
                f"--official-code {folder}: no {name}.py there; expected a clone of "
                "ZhiwenShao/PyTorch-JAANet holding network.py and util.py"
            )
        spec = importlib.util.spec_from_file_location(f"_official_jaanet_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        missing = [n for n in needed if not hasattr(module, n)]
        if missing:
            raise AufacsError(
                f"--official-code {path} lacks {', '.join(missing)}; expected the file of "
                "ZhiwenShao/PyTorch-JAANet"
            )
        modules[name] = module
    return modules


class OfficialCode(nn.Module):
    """The official JAA-Net v1 as ``train_JAAv1.py`` builds it with its defaults (crop 176,
    map size 44, 12 AUs, 49 landmarks, unit_dim 8, ``LocalAUNetv1``, AUNet input 12000): the
    six official modules under their official names, run and scored by the official code."""

    def __init__(self, modules: dict[str, ModuleType]) -> None:
        super().__init__()
        network, unit = modules["network"], 8
        self.util = modules["util"]
        self.region_learning = network.HMRegionLearning(input_dim=3, unit_dim=unit)
        self.align_net = network.AlignNet(
            crop_size=176, map_size=44, au_num=12, land_num=49, input_dim=unit * 8
        )
        self.local_attention_refine = network.LocalAttentionRefine(au_num=12, unit_dim=unit)
        self.local_au_net = network.LocalAUNetv1(au_num=12, input_dim=unit * 8, unit_dim=unit)
        self.global_au_feat = network.HLFeatExtractor(input_dim=unit * 8, unit_dim=unit)
        self.au_net = network.AUNet(au_num=12, input_dim=12000, unit_dim=unit)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """The official forward of a training batch: (B, 3, 176, 176) -> ``scores`` (B, 2, 12)
        log-softmax, ``landmarks`` (B, 98), ``initial`` (B, 12, 52, 52) CPU maps, ``refined``
        (B, 12, 44, 44)."""
        region_feat = self.region_learning(image)
        align_feat, align_output, aus_map = self.align_net(region_feat)
        output_aus_map = self.local_attention_refine(aus_map.detach())
        local_feat = self.local_au_net(region_feat, output_aus_map)
        global_feat = self.global_au_feat(region_feat)
        scores = self.au_net(torch.cat((align_feat, global_feat, local_feat), 1))
        return {
            "scores": scores,
            "landmarks": align_output,
            "initial": aus_map,
            "refined": output_aus_map,
        }

    def loss(self, out: dict[str, torch.Tensor], batch: dict, weight: torch.Tensor) -> torch.Tensor:
        """The total loss from ``util.py``'s four functions with ``train_JAAv1.py``'s lambdas."""
        util, au = self.util, batch["au"].long()
        au_loss = util.au_softmax_loss(out["scores"], au, weight=weight) + util.au_dice_loss(
            out["scores"], au, weight=weight
        )
        land = util.landmark_loss(
            out["landmarks"], batch["landmarks"].flatten(1), batch["biocular"]
        )
        resized = F.interpolate(out["initial"], size=out["refined"].size(2))
        refine = util.attention_refine_loss(out["refined"], resized.detach())
        return LAMBDA_AU * au_loss + LAMBDA_LAND * land + (LAMBDA_REFINE / GRAD_ENHANCE) * refine

    def optimizer_groups(self) -> list[dict]:
        """The official six groups in the official order; the refinement's ``lr`` x 2."""
        modules = [
            self.region_learning,
            self.align_net,
            self.local_attention_refine,
            self.local_au_net,
            self.global_au_feat,
            self.au_net,
        ]
        return official_groups(modules, self.local_attention_refine)

    def layout(self) -> OfficialLayout:
        """Where the official modules keep the weights aufacs's model has."""
        branches = ("local_conv_branch1", "local_conv_branch2", "local_conv_branch3")
        return OfficialLayout(
            region_layers=[
                (
                    layer.conv,
                    layer.bn,
                    [(getattr(layer, b).bns, getattr(layer, b).convs) for b in branches],
                )
                for layer in self.region_learning.multiscale_feat[::2]
            ],
            align_feat=self.align_net.align_feat.feat_extract,
            align_output=self.align_net.align_output,
            refine=self.local_attention_refine.local_aus_attention,
            local=[b.feat_extract for b in self.local_au_net.local_aus_branch],
            global_au_feat=self.global_au_feat.feat_extract,
            au_net=self.au_net.au_output,
        )
