"""Stage 2 of ME-GraphAU (MEFL): graph edge modelling (GEM) and the gated graph convolution.

Official ``model/graph_edge_model.py`` (``CrossAttn``, ``GEM``), ``model/MEFL.py`` (``GNN``)
and ``model/graph.py`` (``create_e_matrix``). N is the number of AUs, T the number of tokens,
C the node width. The graph is complete with N² directed edges, self-loops included; edge
e = i·N + j goes from source node j to target node i.

The official code repeats the node tokens into a (B, N², T, C) tensor and projects every edge
separately; here the per-node projections are computed once per node and broadcast, and the
edge projection, its BatchNorm2d(N²) and the mean over tokens are evaluated in closed form
from the attention weights (see :meth:`GraphEdgeModel.forward`). The function is the same;
the (B, N², T, C) tensor is never built.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class CrossAttention(nn.Module):
    """Single-head cross-attention of the official ``CrossAttn``: q = Linear C -> C/2,
    k = Linear C -> C/2, v = Linear C -> C, all with bias; scale (C/2)^-1/2; softmax over keys.

    Weights: q and k ~ N(0, 2 / (C/2)), v ~ N(0, 2 / C); biases keep PyTorch's default.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.linear_q = nn.Linear(channels, channels // 2)
        self.linear_k = nn.Linear(channels, channels // 2)
        self.linear_v = nn.Linear(channels, channels)
        self.scale = (channels // 2) ** -0.5
        nn.init.normal_(self.linear_q.weight, 0.0, math.sqrt(2.0 / (channels // 2)))
        nn.init.normal_(self.linear_k.weight, 0.0, math.sqrt(2.0 / (channels // 2)))
        nn.init.normal_(self.linear_v.weight, 0.0, math.sqrt(2.0 / channels))

    def weights(self, query_tokens: torch.Tensor, key_tokens: torch.Tensor) -> torch.Tensor:
        """Attention weights softmax(q kᵀ · scale) over the keys.

        ``query_tokens`` (..., Tq, C) and ``key_tokens`` (..., Tk, C), whose leading dims
        broadcast against each other -> (..., Tq, Tk). The projections run on the inputs as
        given, before broadcasting, so a size-1 dimension is projected once.
        """
        query, key = self.linear_q(query_tokens), self.linear_k(key_tokens)
        dots = torch.einsum("...td,...sd->...ts", query, key)  # no broadcast copies
        return torch.softmax(dots * self.scale, dim=-1)


def _token_mean_batch_norm(
    bn: nn.BatchNorm2d, attention: torch.Tensor, values: torch.Tensor
) -> torch.Tensor:
    """mean_t BN(z)[b, i, j] for z[b, i, j] = attention[b, i, j] @ values[b, i], without
    building z (B, N, N, T, C).

    ``attention`` (B, N, N, Tq, Tk) with rows summing to 1, ``values`` (B, N, Tk, C) ->
    (B, N, N, C). ``bn`` is a BatchNorm2d(N²) whose channel i·N + j has statistics over
    (batch, token, feature), in training mode taken from this batch and folded into the
    running averages like ``nn.BatchNorm2d`` does, in eval mode from the running averages.

    Closed forms per edge (b, i, j), with A = attention[b, i, j], P = values[b, i]:
    mean_t z = (mean_t A) P and Σ_t |z_t|² = Σ (A ⊙ A G) with G = P Pᵀ (Tk x Tk). Every
    value is first shifted by the per-target mean s_i of P (rows of A sum to 1, so z shifts
    by the same s_i), which keeps E[z²] - E[z]² free of cancellation. Computed with autocast
    off, in float32 or, in a float64 model, in float64.
    """
    batch, num_nodes, _, tokens, channels = *attention.shape[:4], values.shape[-1]
    dtype = torch.promote_types(torch.promote_types(attention.dtype, values.dtype), torch.float32)
    with torch.autocast(device_type=values.device.type, enabled=False):
        attention, values = attention.to(dtype), values.to(dtype)
        shift = values.detach().mean(dim=(0, 2, 3), keepdim=True)  # (1, N, 1, 1) per target
        centred = values - shift
        token_mean = attention.mean(dim=-2) @ centred  # (B, N, N, C), shifted by s_i
        if bn.training:
            gram = centred @ centred.transpose(-1, -2)  # (B, N, Tk, Tk)
            attention_gram = torch.einsum("bijts,bisu->bijtu", attention, gram)
            square_sum = (attention * attention_gram).sum(dim=(-2, -1))  # (B, N, N): Σ_t |z_t|²
            count = batch * tokens * channels
            mean = token_mean.mean(dim=(0, 3))  # (N, N), shifted
            var = (square_sum.sum(dim=0) / count - mean.square()).clamp_min(0.0)
            _update_running_stats(bn, mean + shift.view(num_nodes, 1), var, count)
        else:
            mean = bn.running_mean.view(num_nodes, num_nodes) - shift.view(num_nodes, 1)
            var = bn.running_var.view(num_nodes, num_nodes)
        scale = bn.weight.view(num_nodes, num_nodes) * (var + bn.eps).rsqrt()
        shifted = (token_mean - mean[..., None]) * scale[..., None]
        return shifted + bn.bias.view(num_nodes, num_nodes, 1)


@torch.no_grad()
def _update_running_stats(
    bn: nn.BatchNorm2d, mean: torch.Tensor, biased_var: torch.Tensor, count: int
) -> None:
    """Fold one batch's per-channel mean and biased variance into ``bn``'s running averages
    exactly as ``nn.BatchNorm2d`` does (unbiased variance, momentum or cumulative average)."""
    bn.num_batches_tracked += 1
    momentum = 1.0 / bn.num_batches_tracked.item() if bn.momentum is None else bn.momentum
    unbiased = biased_var * (count / max(count - 1, 1))
    bn.running_mean.lerp_(mean.flatten().to(bn.running_mean.dtype), momentum)
    bn.running_var.lerp_(unbiased.flatten().to(bn.running_var.dtype), momentum)


class GraphEdgeModel(nn.Module):
    """GEM: multi-dimensional edge features from the AU-specific token maps.

    1. FAM: F_i = CrossAttn(query U_i, key/value X), per node i: (B, N, T, C).
    2. ARM: for edge e = i·N + j, CrossAttn(query F_j (source), key/value F_i (target)).
    3. ``edge_proj`` (Linear C -> C with bias, ~ N(0, 2 / C)), BatchNorm2d(N²) with the
       edges as channels, then the mean over the T tokens.

    The official ``GEM`` returns step 3 before the token mean, which its ``Head`` takes;
    this module returns the edge features after it.
    """

    def __init__(self, channels: int, num_nodes: int) -> None:
        super().__init__()
        self.fam = CrossAttention(channels)
        self.arm = CrossAttention(channels)
        self.edge_proj = nn.Linear(channels, channels)
        self.bn = nn.BatchNorm2d(num_nodes * num_nodes)
        nn.init.normal_(self.edge_proj.weight, 0.0, math.sqrt(2.0 / channels))

    def forward(self, au_tokens: torch.Tensor, global_tokens: torch.Tensor) -> torch.Tensor:
        """``au_tokens`` U (B, N, T, C) and ``global_tokens`` X (B, T, C) -> edge features
        (B, N², C), edge e = i·N + j.

        Since each ARM output token is a convex combination of its target's value tokens,
        edge_proj(ARM) = A · edge_proj(linear_v(F_i)) with A the ARM attention weights; so
        the value path is projected per node and the BatchNorm and token mean use
        :func:`_token_mean_batch_norm`.
        """
        fam_weights = self.fam.weights(au_tokens, global_tokens.unsqueeze(1))  # (B, N, T, T)
        fam = torch.einsum("bnts,bsc->bntc", fam_weights, self.fam.linear_v(global_tokens))
        # [b, i, j]: query from source j, keys from target i -> (B, N, N, T, T)
        arm_weights = self.arm.weights(fam.unsqueeze(1), fam.unsqueeze(2))
        projected_values = self.edge_proj(self.arm.linear_v(fam))  # (B, N, T, C) per target
        edges = _token_mean_batch_norm(self.bn, arm_weights, projected_values)
        return edges.flatten(1, 2)


class GatedGCNLayer(nn.Module):
    """One residual gated graph-convolution layer with edge features (official MEFL ``GNN``,
    after Bresson & Laurent 2017). For target i and source j:

    - e_ij <- e_ij + ReLU(BN_e(A x_i + B x_j + E e_ij))
    - g_ij = softmax over j of sigmoid(e_ij), per channel
    - x_i <- ReLU(x_i + BN_v(U x_i + (1/N) Σ_j g_ij ⊙ V x_j))

    A, B, E, U, V: Linear C -> C without bias, ~ N(0, 2 / C). BN_v = BatchNorm1d(N) and
    BN_e = BatchNorm1d(N²) use nodes / edges as channels (statistics over batch and feature).
    """

    def __init__(self, channels: int, num_nodes: int) -> None:
        super().__init__()
        for name in ("A", "B", "E", "U", "V"):
            linear = nn.Linear(channels, channels, bias=False)
            nn.init.normal_(linear.weight, 0.0, math.sqrt(2.0 / channels))
            self.add_module(name, linear)
        self.bnv = nn.BatchNorm1d(num_nodes)
        self.bne = nn.BatchNorm1d(num_nodes * num_nodes)

    def forward(
        self, nodes: torch.Tensor, edges: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``nodes`` (B, N, C), ``edges`` (B, N², C) -> updated (nodes, edges), same shapes."""
        batch, num_nodes, _ = nodes.shape
        pair = self.A(nodes).unsqueeze(2) + self.B(nodes).unsqueeze(1)  # (B, N, N, C)
        edges = edges + F.relu(self.bne(pair.flatten(1, 2) + self.E(edges)))
        gates = torch.softmax(torch.sigmoid(edges).view(batch, num_nodes, num_nodes, -1), dim=2)
        messages = (gates * self.V(nodes).unsqueeze(1)).sum(dim=2) / num_nodes  # (B, N, C)
        return F.relu(nodes + self.bnv(self.U(nodes) + messages)), edges


class GatedGCN(nn.Module):
    """The two stacked :class:`GatedGCNLayer` of stage 2 (separate weights)."""

    def __init__(self, channels: int, num_nodes: int, num_layers: int = 2) -> None:
        super().__init__()
        self.layers = nn.ModuleList(GatedGCNLayer(channels, num_nodes) for _ in range(num_layers))

    def forward(
        self, nodes: torch.Tensor, edges: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``nodes`` (B, N, C), ``edges`` (B, N², C) -> (nodes, edges) after the last layer;
        the edges are pre-sigmoid features."""
        for layer in self.layers:
            nodes, edges = layer(nodes, edges)
        return nodes, edges
