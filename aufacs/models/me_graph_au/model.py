"""ME-GraphAU (Luo et al., IJCAI 2022) with a ResNet-50 backbone, stages 1 (ANFL) and 2 (MEFL).

Follows the official code (CVI-SZU/ME-GraphAU ``model/ANFL.py``, ``model/MEFL.py``) layer for
layer, with the same parameters (28,253,784 in stage 1 and 31,666,132 in stage 2 for 12 AUs, of
which the ResNet-50 is 23,508,032); the per-AU and per-edge loops of that code run as batched
operations (see :mod:`.layers` and :mod:`.mefl`).

Input: (B, 3, 224, 224) RGB scaled to [0, 1] and normalised with the ImageNet mean and std;
the official pipeline resizes the aligned face to 256 and crops 224 (random crop for
training, centre crop for testing). Shapes at 224 px, N AUs, C = 512, T = 49 tokens:

===========================  ===========================================================
backbone tokens              (B, 49, 2048)   ResNet-50 ``layer4`` map, row-major tokens
X = global_linear            (B, 49, C)
U = AFG (N linear blocks)    (B, N, 49, C);  nodes v_i = mean over tokens (B, N, C)
stage 1: top-K graph + GCN   nodes (B, N, C), adjacency (B, N, N)
stage 2: GEM + gated GCN     nodes (B, N, C), edges (B, N², C), edge e = i·N + j
AU probabilities             (B, N) cosine of node i and class vector i, in [0, 1]
edge logits (stage 2)        (B, N², 4) co-occurrence class of (target i, source j)
===========================  ===========================================================

Losses (:mod:`aufacs.models.losses`): stage 1 L = L_WA (weighted asymmetric loss on the cosine
probabilities, which are *not* sigmoids); stage 2 L = L_WA + λ·L_E with L_E the
cross-entropy of each edge's class 2·y_i + y_j (λ = 0.05 in the README's BP4D command).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from aufacs.core.errors import AufacsError
from aufacs.models.backbones import Pretrained, torchvision_backbone
from aufacs.models.base import IMAGENET_NORMALISATION, AUModel, AUOutput, InputSpec
from aufacs.models.losses import edge_cross_entropy, weighted_asymmetric_loss
from aufacs.models.me_graph_au.anfl import FacialGraphGCN
from aufacs.models.me_graph_au.checkpoints import (
    convert_official_state_dict,
    is_official_state_dict,
    read_state_dict,
    unwrap_state_dict,
)
from aufacs.models.me_graph_au.layers import LinearBlock, ResNetTokens, class_similarity
from aufacs.models.me_graph_au.mefl import GatedGCN, GraphEdgeModel

#: Backbones the builder accepts; ``resnet18`` (node width 128) only with random init, for
#: fast tests.
BACKBONES: tuple[str, ...] = ("resnet50", "resnet18")
#: Top-level modules that stage 2 takes from a stage-1 model (the stage-1 GCN is dropped).
STAGE1_TRANSFER: tuple[str, ...] = ("backbone", "global_linear", "afg", "sc")


class MEGraphAU(AUModel):
    """ME-GraphAU on a ResNet token backbone; ``stage`` 1 (ANFL) or 2 (MEFL).

    Submodules: ``backbone`` (:class:`ResNetTokens`), ``global_linear`` and ``afg``
    (:class:`LinearBlock`, the AFG's N blocks as one), ``sc`` (N, C) class vectors, and
    ``gnn`` (:class:`FacialGraphGCN` in stage 1, :class:`GatedGCN` in stage 2) with ``gem``
    (:class:`GraphEdgeModel`) and ``edge_fc`` (Linear C -> 4) in stage 2.
    """

    weight_scheme = "inverse"

    def __init__(
        self,
        backbone: ResNetTokens,
        num_aus: int,
        stage: int,
        neighbor_num: int = 4,
        lam_edge: float = 0.05,
        input_size: int = 224,
    ) -> None:
        super().__init__()
        self.input_spec = InputSpec(
            input_size, *IMAGENET_NORMALISATION, resize_to=round(input_size * 256 / 224)
        )
        self.num_aus = num_aus
        self.stage = stage
        self.lam_edge = lam_edge
        channels = backbone.out_channels // 4
        self.backbone = backbone
        self.global_linear = LinearBlock(backbone.out_channels, channels)
        self.afg = LinearBlock(channels, channels, copies=num_aus)
        if stage == 1:
            self.gnn = FacialGraphGCN(channels, num_aus, neighbor_num)
        else:
            self.gem = GraphEdgeModel(channels, num_aus)
            self.gnn = GatedGCN(channels, num_aus)
            self.edge_fc = nn.Linear(channels, 4)
            nn.init.xavier_uniform_(self.edge_fc.weight)
        self.sc = nn.Parameter(torch.empty(num_aus, channels))
        nn.init.xavier_uniform_(self.sc)

    def gradcam_layer(self) -> nn.Module:
        """The layer Grad-CAM explains: the backbone's last stage, (B, 2048, S/32, S/32) for
        input side S (7 × 7 at 224 px)."""
        return self.backbone.layer4

    def forward(self, batch: dict[str, torch.Tensor]) -> AUOutput:
        """``batch["image"]`` (B, 3, H, W) -> :class:`AUOutput` with ``au_prob`` (B, N), the
        cosine similarities in [0, 1] (``au_logits`` is None: there are no log-odds);
        stage 1 adds ``extras["adjacency"]`` (B, N, N), the top-K facial graph; stage 2 adds
        ``edge_logits`` (B, N², 4)."""
        tokens = self.global_linear(self.backbone(batch["image"]))  # (B, T, C)
        batch_size, num_tokens, channels = tokens.shape
        au_tokens = self.afg(tokens).view(batch_size, num_tokens, self.num_aus, channels)
        au_tokens = au_tokens.transpose(1, 2)  # (B, N, T, C)
        nodes = au_tokens.mean(dim=2)  # (B, N, C)
        if self.stage == 1:
            nodes, adjacency = self.gnn(nodes)
            return AUOutput(
                au_prob=class_similarity(nodes, self.sc), extras={"adjacency": adjacency}
            )
        nodes, edges = self.gnn(nodes, self.gem(au_tokens, tokens))
        return AUOutput(au_prob=class_similarity(nodes, self.sc), edge_logits=self.edge_fc(edges))

    def loss(
        self, output: AUOutput, batch: dict[str, torch.Tensor], au_weights: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Stage 1: L_WA; stage 2: L_WA + ``lam_edge``·L_E. Parts ``wa`` (and ``edge``),
        detached. ``batch["au"]`` (B, N) labels with NaN for unknown; ``au_weights`` (N,)."""
        wa = weighted_asymmetric_loss(output.au_prob, batch["au"], au_weights)
        if self.stage == 1:
            return wa, {"wa": wa.detach()}
        edge = edge_cross_entropy(output.edge_logits, batch["au"])
        return wa + self.lam_edge * edge, {"wa": wa.detach(), "edge": edge.detach()}

    def load_stage1(self, weights: str | Path | Mapping[str, torch.Tensor]) -> None:
        """Copy the parts shared with a stage-1 model into this one.

        ``weights``: a path to, or the content of, a stage-1 state dict or checkpoint (a
        dict with ``state_dict`` or ``model``), in aufacs' or the official key names
        (``module.`` prefixes allowed). Transferred: every parameter and BatchNorm buffer of
        :data:`STAGE1_TRANSFER` (``backbone``, ``global_linear``, ``afg``, ``sc``); the
        stage-1 ``gnn`` and anything else is ignored, as with the official
        ``load_state_dict(strict=False)``. Raises AufacsError when an entry to transfer is
        missing or has another shape (another backbone or number of AUs).
        """
        if isinstance(weights, Mapping):
            source, state = "the stage-1 state dict", unwrap_state_dict(weights)
        else:
            source, state = f"stage-1 weight file {weights}", read_state_dict(weights)
        if is_official_state_dict(state):
            state = convert_official_state_dict(state)
        own = self.state_dict()
        wanted = [key for key in own if key.split(".", 1)[0] in STAGE1_TRANSFER]
        missing = [key for key in wanted if key not in state]
        if missing:
            raise AufacsError(
                f"{source} lacks {len(missing)} of the {len(wanted)} entries stage 2 takes "
                f"over (first: {missing[0]!r}); expected a ME-GraphAU stage-1 state dict"
            )
        for key in wanted:
            if state[key].shape != own[key].shape:
                raise AufacsError(
                    f"{source} has {key!r} of shape {tuple(state[key].shape)}, expected "
                    f"{tuple(own[key].shape)}: it is for another backbone or number of AUs"
                )
        self.load_state_dict({key: state[key] for key in wanted}, strict=False)


def _resnet(backbone: str, pretrained: Pretrained) -> nn.Module:
    if backbone == "resnet50":
        return torchvision_backbone("resnet50", pretrained)
    if backbone == "resnet18":
        if pretrained is not None:
            raise AufacsError(
                "backbone='resnet18' is a small test backbone without ImageNet weights in "
                "aufacs; pass pretrained=None or use backbone='resnet50'"
            )
        import torchvision  # imported on use: it takes seconds

        return torchvision.models.resnet18(weights=None)
    raise AufacsError(f"unknown backbone {backbone!r} for me_graph_au; expected one of {BACKBONES}")


def build_me_graph_au(
    num_aus: int = 12,
    *,
    stage: int = 1,
    pretrained: str | Path | None = "imagenet",
    neighbor_num: int = 4,
    lam_edge: float = 0.05,
    stage1_weights: str | Path | None = None,
    backbone: str = "resnet50",
    input_size: int = 224,
) -> MEGraphAU:
    """Build ME-GraphAU for ``num_aus`` AUs (12 for BP4D, 8 for DISFA).

    ``stage``: 1 (ANFL: AFG + top-K facial graph) or 2 (MEFL: AFG + GEM + gated GCN).
    ``pretrained``: backbone weights, ``"imagenet"`` (torchvision's cache, downloaded there on
    first use unless ``AUFACS_OFFLINE=1``; AufacsError saying how to get them if that fails), a
    path to a ResNet state dict, or None for random init; not read when ``stage1_weights`` is
    given, since those replace the backbone.
    ``neighbor_num``: K of the stage-1 facial graph (4 for BP4D, 3 for DISFA).
    ``lam_edge``: λ of the stage-2 loss L_WA + λ·L_E (README BP4D: 0.05; code default 0.001).
    ``stage1_weights``: stage 2 only, a stage-1 checkpoint to start from (see
    :meth:`MEGraphAU.load_stage1`). ``backbone``: ``"resnet50"`` (official) or
    ``"resnet18"`` (random init only, for tests). ``input_size``: input side S in pixels, a
    multiple of 32 (the ResNet's stride), cropped from the face resized to S·256/224 as the
    official 224 from 256; 224 is the published size.
    """
    if stage not in (1, 2):
        raise AufacsError(f"stage must be 1 (ANFL) or 2 (MEFL), got {stage!r}")
    if num_aus < 1:
        raise AufacsError(f"num_aus must be a positive number of AUs, got {num_aus}")
    if stage == 1 and not 1 <= neighbor_num <= num_aus:
        raise AufacsError(f"neighbor_num must lie in 1..num_aus={num_aus}, got {neighbor_num}")
    if not lam_edge >= 0:
        raise AufacsError(f"lam_edge must be a non-negative loss weight, got {lam_edge}")
    if input_size < 32 or input_size % 32:
        raise AufacsError(
            f"input_size must be a multiple of 32 (224 in the paper), not {input_size}"
        )
    if stage1_weights is not None and stage != 2:
        raise AufacsError("stage1_weights initialises a stage-2 model; pass stage=2 with it")
    resnet = _resnet(backbone, None if stage1_weights is not None else pretrained)
    model = MEGraphAU(ResNetTokens(resnet), num_aus, stage, neighbor_num, lam_edge, input_size)
    if stage1_weights is not None:
        model.load_stage1(stage1_weights)
    return model
