"""Stage 1 of ME-GraphAU (ANFL): the facial graph generator and one graph convolution.

Official ``model/ANFL.py`` class ``GNN`` with the default ``metric='dots'`` and
``model/graph.py`` ``normalize_digraph``. N is the number of AUs (graph nodes), C the node
width (512 for ResNet-50), K the number of neighbours (4 for BP4D, 3 for DISFA).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def top_k_graph(nodes: torch.Tensor, neighbor_num: int) -> torch.Tensor:
    """The facial graph: node i links to the K nodes j with the largest dot product v_i·v_j.

    ``nodes`` (B, N, C) -> adjacency (B, N, N) of 0.0 / 1.0, built on detached features (no
    gradient flows through the graph). A[i, j] = 1 when v_i·v_j is at least the K-th largest
    value of row i, so ties may give more than K links; i usually links to itself.
    """
    features = nodes.detach()
    similarity = features @ features.transpose(1, 2)  # (B, N, N)
    threshold = similarity.topk(neighbor_num, dim=-1).values[..., -1:]  # (B, N, 1)
    return (similarity >= threshold).to(nodes.dtype)


def normalize_digraph(adjacency: torch.Tensor) -> torch.Tensor:
    """D^-1/2 A D^-1/2 with D the out-degrees (row sums), on both sides as the official code
    does although A is not symmetric. (B, N, N) -> (B, N, N)."""
    inv_sqrt_degree = adjacency.sum(dim=-1).rsqrt()  # (B, N); every row has >= 1 link
    return inv_sqrt_degree[:, :, None] * adjacency * inv_sqrt_degree[:, None, :]


class FacialGraphGCN(nn.Module):
    """Top-K facial graph + one residual graph convolution:
    v' = ReLU(v + BN(Â·V(v) + U(v))).

    U and V are Linear C -> C with bias, weights ~ N(0, 2 / C). The BatchNorm1d(N) uses the N
    nodes as channels, with statistics over batch and feature dimension.
    """

    def __init__(self, channels: int, num_nodes: int, neighbor_num: int) -> None:
        super().__init__()
        self.neighbor_num = neighbor_num
        self.U = nn.Linear(channels, channels)
        self.V = nn.Linear(channels, channels)
        self.bnv = nn.BatchNorm1d(num_nodes)
        for linear in (self.U, self.V):
            nn.init.normal_(linear.weight, 0.0, math.sqrt(2.0 / channels))

    def forward(self, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``nodes`` (B, N, C) -> (updated nodes (B, N, C), adjacency (B, N, N) of 0 / 1)."""
        adjacency = top_k_graph(nodes, self.neighbor_num)
        aggregate = normalize_digraph(adjacency) @ self.V(nodes)
        return F.relu(nodes + self.bnv(aggregate + self.U(nodes))), adjacency
