"""ME-GraphAU written out naively in the official module layout and key names, as a reference.

:class:`RefMEFARG` is the official ``MEFARG`` head on any backbone that gives (B, T, C) tokens
and has ``out_channels``: one LinearBlock module per AU, stage 1's GCN over the top-k
similarity graph, and stage 2's edge model (cross-attention over every ordered AU pair, built
with ``repeat``) and gated GCN with its start / end incidence products. Its state dict has the
official key names, so :func:`aufacs.models.me_graph_au.convert_official_state_dict` loads it
into an aufacs model. :class:`PlainResNetTokens` is the official backbone, a plain torchvision
ResNet-50. The tests compare aufacs's batched model with these; ``bench_megraph_step`` times it
against them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision
from torch import nn


class RefLinearBlock(nn.Module):
    """Official ``LinearBlock``: Linear -> BatchNorm over channels -> ReLU, per token."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, out_features)
        self.bn = nn.BatchNorm1d(out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C_in) -> (B, T, C_out)
        return F.relu(self.bn(self.fc(x).permute(0, 2, 1))).permute(0, 2, 1)


class RefGraphGCN(nn.Module):
    """Stage 1's official ``GNN``: one GCN layer over each sample's top-k similarity graph."""

    def __init__(self, channels: int, num_nodes: int, neighbor_num: int) -> None:
        super().__init__()
        self.U, self.V = nn.Linear(channels, channels), nn.Linear(channels, channels)
        self.bnv = nn.BatchNorm1d(num_nodes)
        self.k = neighbor_num

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        si = torch.einsum("bic,bjc->bij", x.detach(), x.detach())
        adjacency = (si >= si.topk(self.k, dim=-1)[0][:, :, -1].view(b, n, 1)).float()
        degree = torch.eye(n).view(1, n, n) * adjacency.sum(-1).pow(-0.5).view(b, n, 1)
        normalised = torch.bmm(torch.bmm(degree, adjacency), degree)
        return F.relu(x + self.bnv(torch.bmm(normalised, self.V(x)) + self.U(x)))


class RefCrossAttn(nn.Module):
    """Official ``CrossAttn``: queries from ``y``, keys and values from ``x``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.linear_q = nn.Linear(channels, channels // 2)
        self.linear_k = nn.Linear(channels, channels // 2)
        self.linear_v = nn.Linear(channels, channels)

    def forward(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        dots = self.linear_q(y) @ self.linear_k(x).transpose(-2, -1)
        scale = (self.linear_q.out_features) ** -0.5
        return torch.softmax(dots * scale, dim=-1) @ self.linear_v(x)


class RefGEM(nn.Module):
    """Official ``GEM``: edge features from cross-attention over every ordered AU pair."""

    def __init__(self, channels: int, num_nodes: int) -> None:
        super().__init__()
        self.FAM, self.ARM = RefCrossAttn(channels), RefCrossAttn(channels)
        self.edge_proj = nn.Linear(channels, channels)
        self.bn = nn.BatchNorm2d(num_nodes * num_nodes)

    def forward(self, class_feature: torch.Tensor, global_feature: torch.Tensor) -> torch.Tensor:
        b, n, t, c = class_feature.shape
        feat = self.FAM(class_feature, global_feature.repeat(1, n, 1).view(b, n, t, c))
        feat_end = feat.repeat(1, 1, n, 1).view(b, -1, t, c)  # edge i*n+j -> node i
        feat_start = feat.repeat(1, n, 1, 1).view(b, -1, t, c)  # edge i*n+j -> node j
        return self.bn(self.edge_proj(self.ARM(feat_start, feat_end)))


class RefGatedGCN(nn.Module):
    """Stage 2's official ``GNN``: two gated GCN layers with start / end incidence products."""

    def __init__(self, channels: int, num_nodes: int) -> None:
        super().__init__()
        for layer in (1, 2):
            for name in "UVABE":
                self.add_module(f"{name}{layer}", nn.Linear(channels, channels, bias=False))
            self.add_module(f"bnv{layer}", nn.BatchNorm1d(num_nodes))
            self.add_module(f"bne{layer}", nn.BatchNorm1d(num_nodes * num_nodes))
        self.n = num_nodes
        self.end = torch.eye(num_nodes).repeat_interleave(num_nodes, dim=0)  # (E, N): i
        self.start = torch.eye(num_nodes).repeat(num_nodes, 1)  # (E, N): j

    def forward(self, x: torch.Tensor, edge: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for layer in (1, 2):
            part = {name: getattr(self, f"{name}{layer}") for name in "UVABE"}
            pre = (
                torch.einsum("ev,bvc->bec", self.end, part["A"](x))
                + torch.einsum("ev,bvc->bec", self.start, part["B"](x))
                + part["E"](edge)
            )
            edge = edge + F.relu(getattr(self, f"bne{layer}")(pre))
            b, _, c = edge.shape
            gate = torch.softmax(torch.sigmoid(edge).view(b, self.n, self.n, c), 2).view(b, -1, c)
            messages = torch.einsum("ev,bvc->bec", self.start, part["V"](x))
            total = torch.einsum("ve,bec->bvc", self.end.t(), gate * messages) / self.n
            x = F.relu(x + getattr(self, f"bnv{layer}")(part["U"](x) + total))
        return x, edge


class RefHead(nn.Module):
    """Official ``Head``: one LinearBlock per AU, the stage's graph, cosine AU scores."""

    def __init__(self, channels: int, num_nodes: int, stage: int) -> None:
        super().__init__()
        self.class_linears = nn.ModuleList(
            RefLinearBlock(channels, channels) for _ in range(num_nodes)
        )
        self.sc = nn.Parameter(torch.randn(num_nodes, channels))
        if stage == 1:
            self.gnn = RefGraphGCN(channels, num_nodes, neighbor_num=2)
        else:
            self.edge_extractor = RefGEM(channels, num_nodes)
            self.gnn = RefGatedGCN(channels, num_nodes)
            self.edge_fc = nn.Linear(channels, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        f_u = torch.cat([layer(x).unsqueeze(1) for layer in self.class_linears], dim=1)
        f_v = f_u.mean(dim=-2)
        edge_logits = None
        if hasattr(self, "edge_extractor"):
            f_v, f_e = self.gnn(f_v, self.edge_extractor(f_u, x).mean(dim=-2))
            edge_logits = self.edge_fc(f_e)
        else:
            f_v = self.gnn(f_v)
        sc = F.normalize(F.relu(self.sc), p=2, dim=-1)
        return (F.normalize(f_v, p=2, dim=-1) * sc).sum(dim=-1), edge_logits


class RefMEFARG(nn.Module):
    """Official ``MEFARG``: backbone tokens -> global LinearBlock -> :class:`RefHead`;
    ``forward`` gives (AU probabilities, edge logits or None)."""

    def __init__(self, backbone: nn.Module, num_nodes: int, stage: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.global_linear = RefLinearBlock(backbone.out_channels, backbone.out_channels // 4)
        self.head = RefHead(backbone.out_channels // 4, num_nodes, stage)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.head(self.global_linear(self.backbone(image)))


class PlainResNetTokens(nn.Module):
    """The official backbone: torchvision ResNet-50 up to ``layer4``, default memory format;
    (B, 3, H, W) -> (B, 49, 2048) tokens at 224 px."""

    def __init__(self) -> None:
        super().__init__()
        resnet = torchvision.models.resnet50(weights=None)
        self.out_channels = resnet.fc.in_features
        self.trunk = nn.Sequential(*list(resnet.children())[:-2])

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.trunk(image).flatten(2).transpose(1, 2)

    def official_state_dict(self) -> dict[str, torch.Tensor]:
        """The state dict under torchvision's names (``conv1.weight``, ``layer1.0...``)."""
        names = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
        return {
            f"{names[int(key.split('.', 1)[0])]}.{key.split('.', 1)[1]}": value
            for key, value in self.trunk.state_dict().items()
        }
