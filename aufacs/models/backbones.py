"""torchvision backbones with ImageNet weights fetched the way torchvision fetches them.

``pretrained`` is one of:

- ``"imagenet"``: torchvision's ``IMAGENET1K_V1`` weight file (``VGG19_Weights``,
  ``ResNet50_Weights``), taken from torchvision's cache (``$TORCH_HOME/hub/checkpoints``, by
  default ``~/.cache/torch/hub/checkpoints``) when it is there; otherwise downloaded into that
  cache on first use, with a progress bar on stderr and torch.hub's check of the sha256 prefix
  in the file name. ``AUFACS_WEIGHTS_URL`` replaces ``https://download.pytorch.org/models/``
  (an institutional mirror). Offline (``AUFACS_OFFLINE=1`` or ``offline=True``) nothing
  downloads, and a missing file raises :class:`~aufacs.core.errors.AufacsError` saying where to
  put it; so does a failed download.
- a path to a ``.pth`` state dict of the same architecture;
- ``None``: random initialisation, only when the caller asks for it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.error import HTTPError

import torch
from torch import nn

from aufacs.core.errors import AufacsError

#: Environment variable that turns downloads off when set to anything but "", "0" or "false".
OFFLINE_ENV = "AUFACS_OFFLINE"
#: Environment variable holding a base URL that replaces :data:`DEFAULT_WEIGHTS_URL`.
MIRROR_ENV = "AUFACS_WEIGHTS_URL"
#: Where torchvision publishes its weight files.
DEFAULT_WEIGHTS_URL = "https://download.pytorch.org/models/"


@dataclass(frozen=True)
class Architecture:
    """A backbone aufacs can load ImageNet weights into.

    ``build``: makes the randomly initialised model. ``files``: gives the names of the
    published weight files accepted from the cache, the one to download first; each name
    carries the sha256 prefix of its content (``name-<hex>.pth``), as torch.hub expects. Both
    are functions so that torchvision, which takes seconds to import, is imported only when a
    backbone is built or its weights are looked up.
    """

    build: Callable[[], nn.Module]
    files: Callable[[], tuple[str, ...]]


def _torchvision_model(name: str) -> Callable[[], nn.Module]:
    """A function making ``torchvision.models.<name>`` with random weights."""

    def build() -> nn.Module:
        import torchvision

        return getattr(torchvision.models, name)(weights=None)

    return build


def _torchvision_files(weights: str, *older: str) -> Callable[[], tuple[str, ...]]:
    """A function giving the file name of ``torchvision.models.<weights>.IMAGENET1K_V1``
    (the end of its URL), followed by the ``older`` published names."""

    def files() -> tuple[str, ...]:
        import torchvision

        url = getattr(torchvision.models, weights).IMAGENET1K_V1.url
        return (url.rsplit("/", 1)[-1], *older)

    return files


_ARCHITECTURES: dict[str, Architecture] = {
    "vgg19": Architecture(_torchvision_model("vgg19"), _torchvision_files("VGG19_Weights")),
    "resnet50": Architecture(
        _torchvision_model("resnet50"),
        _torchvision_files("ResNet50_Weights", "resnet50-19c8e357.pth", "resnet50-11ad3fa6.pth"),
    ),
}

Pretrained = str | Path | None


def torchvision_checkpoint_dir() -> Path:
    """torchvision's weight cache folder (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def downloads_disabled(offline: bool | None = None) -> bool:
    """``offline`` when given, else whether ``AUFACS_OFFLINE`` is set to a true value."""
    if offline is not None:
        return offline
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def imagenet_url(arch: str) -> str:
    """The URL ``arch``'s ImageNet weights download from (``AUFACS_WEIGHTS_URL`` or torchvision's
    own server, followed by the file name)."""
    base = os.environ.get(MIRROR_ENV) or DEFAULT_WEIGHTS_URL
    return base.rstrip("/") + "/" + _ARCHITECTURES[arch].files()[0]


def imagenet_weight_file(arch: str, offline: bool | None = None) -> Path:
    """The ImageNet weight file of ``arch`` in torchvision's cache, downloaded there first
    unless it is cached or downloads are off (``offline``, None: ``AUFACS_OFFLINE``).

    Raises AufacsError when the file is neither cached nor downloadable.
    """
    folder = torchvision_checkpoint_dir()
    for name in _ARCHITECTURES[arch].files():
        if (folder / name).is_file():
            return folder / name
    path, url = folder / _ARCHITECTURES[arch].files()[0], imagenet_url(arch)
    if downloads_disabled(offline):
        raise AufacsError(
            f"ImageNet weights for {arch} are not in torchvision's cache ({path}) and downloads "
            f"are off ({OFFLINE_ENV}=1 or offline=True); copy that file there from {url}, pass "
            f"its path as pretrained=..., or pass pretrained=None to start from random "
            f"initialisation."
        )
    _download(url, path)
    return path


def _download(url: str, path: Path) -> None:
    """Download ``url`` to ``path`` with a progress bar, checking the sha256 prefix that the
    file name carries; torch.hub writes a temporary file and moves it only when it is whole
    and its hash matches. Raises AufacsError saying what to do when that fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    match = torch.hub.HASH_REGEX.search(path.name)
    try:
        torch.hub.download_url_to_file(
            url, str(path), hash_prefix=match.group(1) if match else None, progress=True
        )
    except (OSError, RuntimeError) as error:
        reason = error if isinstance(error, HTTPError) else getattr(error, "reason", error)
        raise AufacsError(
            f"downloading ImageNet weights from {url} failed ({reason}); copy that file to "
            f"{path} from a machine with internet and set {OFFLINE_ENV}=1, pass its path as "
            f"pretrained=..., or pass pretrained=None to start from random weights."
        ) from None


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


def torchvision_backbone(
    arch: str, pretrained: Pretrained, offline: bool | None = None
) -> nn.Module:
    """A full torchvision ``vgg19`` or ``resnet50`` with the requested weights loaded.

    Callers keep the layers they need. ``offline``: with ``"imagenet"``, True uses only
    torchvision's cache, False may download, None reads ``AUFACS_OFFLINE``. Raises AufacsError
    for an unknown architecture, weights neither cached nor downloadable, or a file that does
    not fit the architecture.
    """
    if arch not in _ARCHITECTURES:
        raise AufacsError(f"unknown backbone {arch!r}; expected one of {sorted(_ARCHITECTURES)}")
    model = _ARCHITECTURES[arch].build()
    if pretrained is None:
        return model
    if isinstance(pretrained, str) and pretrained == "imagenet":
        path = imagenet_weight_file(arch, offline)
    else:
        path = Path(pretrained)
    state = load_weight_file(path, f"a {arch} state dict (.pth), 'imagenet' or None")
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise AufacsError(f"{path} does not fit {arch}: {error}") from None
    return model
