"""The optimiser of a run: SGD or AdamW over the model's parameter groups, fused where possible."""

from __future__ import annotations

import torch
from torch.torch_version import TorchVersion

from aufacs.engine.config import TrainConfig
from aufacs.models import AUModel

#: The first torch with fused SGD and AdamW kernels for CPU tensors (CUDA had them earlier).
FUSED_OPTIMIZERS_SINCE = "2.4"


def make_optimizer(model: AUModel, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD or AdamW (β2 0.999) over the trainable parameters, one group per entry of the
    model's ``optimizer_param_groups()`` at ``lr × lr_mult``. Put the model on its device
    first: from torch 2.4 on, the optimiser runs as one fused kernel on CPU and CUDA (4x less
    time than the per-parameter loop for JAA-Net's 22 M parameters on CPU)."""
    groups = [
        {**g, "params": [p for p in g["params"] if p.requires_grad], "lr": config.lr * g["lr_mult"]}
        for g in model.optimizer_param_groups()
    ]
    groups = [g for g in groups if g["params"]]
    fused = {"fused": True} if TorchVersion(torch.__version__) >= FUSED_OPTIMIZERS_SINCE else {}
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            groups,
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            nesterov=config.nesterov,
            **fused,
        )
    return torch.optim.AdamW(
        groups,
        lr=config.lr,
        betas=(config.momentum, 0.999),
        weight_decay=config.weight_decay,
        **fused,
    )
