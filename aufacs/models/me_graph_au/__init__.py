"""ME-GraphAU (IJCAI 2022), ResNet backbone: stage 1 (ANFL) and stage 2 (MEFL).

Modules: :mod:`.layers` (token backbone, linear block, cosine classifier), :mod:`.anfl`
(stage-1 facial graph + GCN), :mod:`.mefl` (stage-2 graph edge model + gated GCN),
:mod:`.checkpoints` (checkpoint files and official key names) and :mod:`.model` (the model,
its builder); the training recipe of each stage is in :mod:`aufacs.engine.recipes`.
"""

from aufacs.models.me_graph_au.checkpoints import convert_official_state_dict
from aufacs.models.me_graph_au.model import (
    STAGE1_TRANSFER,
    MEGraphAU,
    build_me_graph_au,
)

__all__ = [
    "STAGE1_TRANSFER",
    "MEGraphAU",
    "build_me_graph_au",
    "convert_official_state_dict",
]
