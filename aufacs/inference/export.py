"""One file that carries a trained model anywhere: ``aufacs export`` and reading it back.

:func:`export_model` writes the model of one epoch of a run folder (trained here or imported
with ``aufacs import``) into one file, by convention ``model.aufacs``: a ``torch.save`` dict
of plain values and tensors only, which :func:`load_model_file` reads with
``torch.load(weights_only=True)`` (no pickled code runs). Its keys:

- ``format`` (``"aufacs model"``) and ``version`` (:data:`MODEL_FILE_VERSION`);
- ``spec``: the model name and builder options, AU numbers, aligned size, box enlargement and
  input spec (:class:`aufacs.engine.model_spec.ModelSpec`, as in the run's ``model.json``);
- ``state_dict``: the weights;
- ``provenance``: where the weights came from (the run folder, epoch, data set and fold, the
  ``provenance.json`` of imported weights, the export time and the aufacs and torch versions).

``docs/own_photos.md`` ("A model that travels") documents the keys for users.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

import aufacs
from aufacs.core.errors import AufacsError
from aufacs.core.io import atomic_write
from aufacs.engine.device import resolve_device
from aufacs.engine.model_spec import ModelSpec, load_run_model, load_state
from aufacs.engine.published import load_provenance, read_weight_file, run_origin
from aufacs.engine.runs import load_run_config
from aufacs.models import AUModel

#: The ``format`` value of a model file, and the layout version this aufacs writes and reads.
MODEL_FILE_FORMAT = "aufacs model"
MODEL_FILE_VERSION = 1


@dataclass(frozen=True)
class ExportConfig:
    """Which run and epoch to export, and where to."""

    run: Path = field(
        default=Path("runs/jaa_net_fold1"),
        metadata={"help": "run folder (trained, or imported with aufacs import)"},
    )
    epoch: int | None = field(
        default=None, metadata={"help": "checkpoint epoch (default: the last saved)"}
    )
    out: Path = field(default=Path("model.aufacs"), metadata={"help": "model file to write"})


def export_model(config: ExportConfig) -> Path:
    """Write the model file of ``config.run`` at ``config.epoch`` to ``config.out``
    (atomically); returns its path."""
    model, spec, epoch = load_run_model(config.run, config.epoch)
    content = {
        "format": MODEL_FILE_FORMAT,
        "version": MODEL_FILE_VERSION,
        "spec": spec.record(model),
        "state_dict": model.state_dict(),
        "provenance": _provenance(Path(config.run), epoch),
    }
    with atomic_write(config.out, "wb") as handle:
        torch.save(content, handle)
    return Path(config.out)


def load_model_file(
    path: Path | str, device: str = "cpu"
) -> tuple[AUModel, ModelSpec, dict[str, Any]]:
    """The model in model file ``path`` in eval mode on ``device``, its spec and its
    provenance. Refuses, in one sentence naming the file, a missing file, one that is not an
    aufacs model file, one of another layout version, and weights that do not fit."""
    path = Path(path)
    if not path.is_file():
        raise AufacsError(f"model file {path} does not exist (aufacs export writes one)")
    content = read_weight_file(path)
    if content.get("format") != MODEL_FILE_FORMAT:
        raise AufacsError(f"{path} is not an aufacs model file (aufacs export writes them)")
    if content.get("version") != MODEL_FILE_VERSION:
        raise AufacsError(
            f"{path} is an aufacs model file of version {content.get('version')!r}; this aufacs "
            f"reads version {MODEL_FILE_VERSION}"
        )
    spec = ModelSpec.from_record(content.get("spec"), str(path))
    model = spec.build(str(path))
    load_state(model, content.get("state_dict"), str(path))
    provenance = content.get("provenance")
    return model.to(resolve_device(device)).eval(), spec, dict(provenance or {})


def _provenance(run: Path, epoch: int) -> dict[str, Any]:
    """Where the exported weights came from (module docstring), as plain values."""
    config = load_run_config(run)
    return {
        "origin": run_origin(run),
        "run": str(run.resolve()),
        "epoch": epoch,
        "data": str(config.data),
        "kind": config.kind,
        "fold": config.fold,
        "published": load_provenance(run),
        "exported": datetime.now(UTC).isoformat(timespec="seconds"),
        "aufacs": aufacs.__version__,
        "torch": str(torch.__version__),
    }
