"""The official ME-GraphAU code itself, imported at run time from a clone the user provides.

``--official-code DIR`` of ``bench_megraph_step`` names a clone of CVI-SZU/ME-GraphAU. Its
``model`` folder is imported as a package under the private name :data:`PACKAGE` (its modules
import each other relatively, so they are registered in ``sys.modules`` under that name;
nothing is added to ``sys.path``), and its ``utils.py`` under a private module name; none of
that code ships with aufacs. Two things are changed, in memory only:

- ``model/resnet.py``'s ``resnet50`` loads ImageNet weights from
  ``checkpoints/resnet50-19c8e357.pth``, a file users fetch by hand; here it is called with
  ``pretrained=False`` (random weights: speed does not depend on them).
- ``model/swin_transformer.py`` needs timm, which aufacs does not; ``ANFL.py`` and ``MEFL.py``
  import its builders but the ResNet-50 models never call them, so a stand-in module that
  raises when called takes its place.

- ``model/MEFL.py``'s gated GCN sets its local ``start`` and ``end`` incidence matrices only
  on a CUDA input (``if dev >= 0: start = self.start.to(dev)``), so stage 2 fails on the CPU;
  :data:`CPU_FIX` inserts ``start, end = self.start, self.end`` before that test (the source
  is compiled from memory; the file is untouched).

:func:`official_model` builds the stage's ``MEFARG`` as ``train_stage1.py`` /
``train_stage2.py`` do, and :func:`official_step` runs their per-batch step.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from aufacs.core.errors import AufacsError

#: The private package name the official ``model`` folder is imported under.
PACKAGE = "_official_megraph_model"

#: What the harness uses from each official file, by its path in the clone.
OFFICIAL_NAMES = {
    "model/resnet.py": ("resnet50",),
    "model/ANFL.py": ("MEFARG",),
    "model/MEFL.py": ("MEFARG",),
    "utils.py": ("WeightedAsymmetricLoss",),
}

#: ``model/MEFL.py``'s line that reads the input's CUDA device, and what follows it on the CPU.
CPU_FIX = (
    re.compile(r"^(\s*)dev = x\.get_device\(\)$", re.MULTILINE),
    r"\1dev = x.get_device()\n\1start, end = self.start, self.end",
)

#: AdamW's weight decay and betas in both training scripts (``conf.py`` default, script).
WEIGHT_DECAY, BETAS = 5e-4, (0.9, 0.999)


def _swin_stand_in() -> ModuleType:
    """A module in place of ``model/swin_transformer.py`` whose builders raise."""
    module = ModuleType(f"{PACKAGE}.swin_transformer")

    def unavailable(*args, **kwargs) -> None:
        raise AufacsError("the official Swin backbones need timm; this harness builds ResNet-50")

    for name in ("swin_transformer_tiny", "swin_transformer_small", "swin_transformer_base"):
        setattr(module, name, unavailable)
    return module


def _import_mefl(path: Path) -> ModuleType:
    """``model/MEFL.py`` from ``path`` with :data:`CPU_FIX` applied in memory."""
    name = f"{PACKAGE}.MEFL"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    pattern, replacement = CPU_FIX
    source = pattern.sub(replacement, path.read_text())
    exec(compile(source, str(path), "exec"), module.__dict__)  # noqa: S102
    return module


def _check(folder: Path, path: str, module: ModuleType) -> None:
    """Raise AufacsError if ``module`` lacks a name the harness uses."""
    missing = [name for name in OFFICIAL_NAMES[path] if not hasattr(module, name)]
    if missing:
        raise AufacsError(
            f"--official-code {folder / path} lacks {', '.join(missing)}; expected the file of "
            "CVI-SZU/ME-GraphAU"
        )


def import_official(folder: Path) -> dict[str, ModuleType]:
    """Import ``model/ANFL.py``, ``model/MEFL.py`` (with the model files they import) and
    ``utils.py`` from a ME-GraphAU clone at ``folder``, ``resnet50`` building random weights
    and MEFL's gated GCN fixed for the CPU; returns them by the names ``ANFL``, ``MEFL`` and
    ``utils``."""
    for path in OFFICIAL_NAMES:
        if not (folder / path).is_file():
            raise AufacsError(
                f"--official-code {folder}: no {path} there; expected a clone of "
                f"CVI-SZU/ME-GraphAU holding {', '.join(OFFICIAL_NAMES)}"
            )
    for name in [n for n in sys.modules if n.split(".")[0] == PACKAGE]:
        del sys.modules[name]
    package = ModuleType(PACKAGE)
    package.__path__ = [str(folder / "model")]
    sys.modules[PACKAGE] = package
    sys.modules[f"{PACKAGE}.swin_transformer"] = _swin_stand_in()
    resnet = importlib.import_module(f"{PACKAGE}.resnet")
    _check(folder, "model/resnet.py", resnet)
    resnet.resnet50 = functools.partial(resnet.resnet50, pretrained=False)
    modules = {
        "ANFL": importlib.import_module(f"{PACKAGE}.ANFL"),
        "MEFL": _import_mefl(folder / "model" / "MEFL.py"),
    }
    spec = importlib.util.spec_from_file_location("_official_megraph_utils", folder / "utils.py")
    modules["utils"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(modules["utils"])
    for name, module in modules.items():
        _check(folder, "utils.py" if name == "utils" else f"model/{name}.py", module)
    return modules


def official_model(modules: dict[str, ModuleType], stage: int, num_aus: int, k: int) -> nn.Module:
    """The official ``MEFARG`` with a ResNet-50 backbone: stage 1 ``model/ANFL.py``'s (``k``
    neighbours, dot-product metric), stage 2 ``model/MEFL.py``'s."""
    if stage == 1:
        return modules["ANFL"].MEFARG(
            num_classes=num_aus, backbone="resnet50", neighbor_num=k, metric="dots"
        )
    return modules["MEFL"].MEFARG(num_classes=num_aus, backbone="resnet50")


def official_outputs(net: nn.Module, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``net(image)`` as (AU probabilities (B, N), edge logits (B, N², 4) or None): stage 1's
    ``MEFARG`` returns the probabilities alone."""
    out = net(image)
    return out if isinstance(out, tuple) else (out, None)


def official_loss(
    modules: dict[str, ModuleType], weight: torch.Tensor, lam: float
) -> Callable[[tuple, dict], torch.Tensor]:
    """``(outputs, batch) -> loss`` as the training scripts score a batch (``batch["au"]``
    (B, N) float labels, ``batch["relations"]`` (B, N²) long edge classes):
    ``utils.WeightedAsymmetricLoss`` with the AU weights (float64, as
    ``torch.from_numpy(np.loadtxt(...))`` reads them), plus ``lam`` x ``nn.CrossEntropyLoss``
    of the edge logits in stage 2."""
    wa_loss = modules["utils"].WeightedAsymmetricLoss(weight=weight.double())
    edge_loss = nn.CrossEntropyLoss()

    def loss(outputs: tuple, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        prob, edge_logits = outputs
        total = wa_loss(prob, batch["au"])
        if edge_logits is not None:
            relations = batch["relations"]
            total = total + lam * edge_loss(edge_logits.view(-1, 4), relations.view(-1))
        return total

    return loss


def official_step(
    net: nn.Module, loss: Callable[[tuple, dict], torch.Tensor], batch: dict, lr: float
) -> Callable[[], None]:
    """One step of ``train_stage{1,2}.py``'s loop on ``batch``: zero the gradients, forward
    (:func:`official_outputs`), ``loss``, backward, AdamW step (the scripts' AdamW over
    ``net.parameters()`` at ``lr``; their per-batch cosine learning-rate update is left out)."""
    optimizer = torch.optim.AdamW(net.parameters(), betas=BETAS, lr=lr, weight_decay=WEIGHT_DECAY)

    def step() -> None:
        optimizer.zero_grad()
        loss(official_outputs(net, batch["image"]), batch).backward()
        optimizer.step()

    return step
