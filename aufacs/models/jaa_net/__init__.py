"""The JAA-Net v1 package (Shao et al., ECCV 2018): joint AU detection and face alignment.

The network follows the official PyTorch code (ZhiwenShao/PyTorch-JAANet, ``network.py`` and
``train_JAAv1.py``) layer for layer, with the same parameters (22,162,854 at the defaults), but
holds every per-cell and per-AU module list of that code as one batched module.

Modules: :mod:`.config` (sizes, loss weights and their checks), :mod:`.region` (partitioned
convolutions and the region learning), :mod:`.branches` (the batched per-AU branches: feature
extractors, attention refinement, local AU features) and :mod:`.model` (alignment branch, AU
head, the network with its loss and optimiser groups, its builder).

Input: (B, 3, 176, 176) RGB scaled to [0, 1] then normalised with mean 0.5 and std 0.5, i.e.
values in [-1, 1]. The crop size may be any multiple of 16 from 32 up; the official one is 176.

Shapes at crop l (official l = 176, unit_dim u = 8, N AUs):

==========================  ==============================================================
region features             (B, 8u, l/4, l/4)                       (B, 64, 44, 44)
alignment features          (B, 20u, l/32, l/32)                     (B, 160, 5, 5)
landmarks                   (B, 49, 2) crop pixels, 0-indexed (x, y)
initial attention           (B, N, l/4 + 8, l/4 + 8)                 (B, 12, 52, 52)
refined attention           (B, N, l/4, l/4), in (0, 1)              (B, 12, 44, 44)
local / global features     (B, 20u, l/32, l/32) each                (B, 160, 5, 5)
AU scores                   (B, 2, N): absent and present logits -> log-odds (B, N)
==========================  ==============================================================
"""

from aufacs.models.jaa_net.branches import (
    AttentionRefine,
    BranchStack,
    FeatureExtractor,
    LocalAUNet,
)
from aufacs.models.jaa_net.config import JAANetConfig
from aufacs.models.jaa_net.model import AlignNet, AUHead, JAANet, build_jaa_net
from aufacs.models.jaa_net.region import PartitionedConv, RegionLayer, RegionLearning

__all__ = [
    "AUHead",
    "AlignNet",
    "AttentionRefine",
    "BranchStack",
    "FeatureExtractor",
    "JAANet",
    "JAANetConfig",
    "LocalAUNet",
    "PartitionedConv",
    "RegionLayer",
    "RegionLearning",
    "build_jaa_net",
]
