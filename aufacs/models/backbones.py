"""torchvision backbones with offline ImageNet weights.

Nothing here downloads. ``pretrained`` is one of:

- ``"imagenet"``: torchvision's own weight file, looked up in torchvision's cache
  (``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``);
  if it is not there, :class:`~aufacs.core.errors.AufacsError` says where to put it.
- a path to a ``.pth`` state dict of the same architecture;
- ``None``: random initialisation, only when the caller asks for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torchvision
from torch import nn

from aufacs.core.errors import AufacsError

#: Architecture -> (torchvision builder, weight file names torchvision has published for it).
_ARCHITECTURES: dict[str, tuple[str, tuple[str, ...]]] = {
    "vgg19": ("vgg19", ("vgg19-dcbb9e9d.pth",)),
    "resnet50": (
        "resnet50",
        ("resnet50-0676ba61.pth", "resnet50-19c8e357.pth", "resnet50-11ad3fa6.pth"),
    ),
}

Pretrained = str | Path | None


def torchvision_checkpoint_dir() -> Path:
    """torchvision's weight cache folder (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def imagenet_weight_file(arch: str) -> Path:
    """The cached ImageNet weight file of ``arch``; AufacsError if none is cached."""
    _, names = _ARCHITECTURES[arch]
    folder = torchvision_checkpoint_dir()
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise AufacsError(
        f"ImageNet weights for {arch} are not in torchvision's cache ({folder / names[0]}); "
        f"copy that file there from a machine with internet (torchvision.models.{arch}"
        f"(weights='DEFAULT') downloads it), pass its path as pretrained=..., or pass "
        f"pretrained=None to start from random initialisation."
    )


def load_weight_file(path: str | Path, expected: str) -> Mapping:
    """The dict stored in a ``.pth`` file, loaded on the CPU with ``weights_only=True``.

    ``expected`` names what the file should hold (e.g. "a vgg19 state dict"); a missing file,
    a file torch cannot load safely, or one that holds no dict raises AufacsError saying so.
    """
    path = Path(path)
    if not path.is_file():
        raise AufacsError(f"weight file {path} does not exist; expected {expected}")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any load failure is the same user mistake
        raise AufacsError(f"{path} is not {expected} that torch can load: {error}") from None
    if not isinstance(content, Mapping):
        raise AufacsError(f"{path} holds a {type(content).__name__}; expected {expected}")
    return content


def torchvision_backbone(arch: str, pretrained: Pretrained) -> nn.Module:
    """A full torchvision ``vgg19`` or ``resnet50`` with the requested weights loaded.

    Callers keep the layers they need. Raises AufacsError for an unknown architecture, a
    missing weight file or a file that does not fit the architecture.
    """
    if arch not in _ARCHITECTURES:
        raise AufacsError(f"unknown backbone {arch!r}; expected one of {sorted(_ARCHITECTURES)}")
    model = getattr(torchvision.models, _ARCHITECTURES[arch][0])(weights=None)
    if pretrained is None:
        return model
    if isinstance(pretrained, str) and pretrained == "imagenet":
        path = imagenet_weight_file(arch)
    else:
        path = Path(pretrained)
    state = load_weight_file(path, f"a {arch} state dict (.pth), 'imagenet' or None")
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise AufacsError(f"{path} does not fit {arch}: {error}") from None
    return model
