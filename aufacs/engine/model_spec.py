"""What a trained model needs to predict on new faces, kept in its run folder (``model.json``).

Training and ``aufacs import`` write ``<run>/model.json`` (:data:`MODEL_FILE`), so that a run
predicts without the data it was trained on: the registered model name and its builder
options, the AU numbers in output order, the side of the aligned face in pixels and the box
enlargement of the alignment (both as the aligned-crop cache had them), and the model's input
spec (crop, resize, normalisation) for reference. A run written before aufacs recorded this
falls back to its aligned-crop cache's ``cache.json`` where that is still there.
:func:`load_run_model` opens a run's model this way; ``aufacs export`` puts the same record
into one file (:mod:`aufacs.inference.export`). The fields are documented in
``docs/own_photos.md`` ("A model that travels").
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aufacs.core.errors import AufacsError, error_gist
from aufacs.core.io import write_text_atomic
from aufacs.data.cache import META_FILE, read_cache_meta
from aufacs.data.prepare import cache_folder
from aufacs.engine.checkpoints import checkpoint_paths, load_checkpoint
from aufacs.engine.config import TrainConfig
from aufacs.engine.device import resolve_device
from aufacs.engine.runs import builder_options, load_run_config, saved_epochs
from aufacs.models import AUModel, build_model

#: The file of a run folder that says what prediction needs.
MODEL_FILE = "model.json"
#: Version of the record written by :meth:`ModelSpec.record`.
SPEC_FORMAT = 1
#: Keys of the record and the type each must have.
_FIELDS = {"model": str, "options": dict, "aus": list, "size": int, "box_enlarge": float}


@dataclass(frozen=True)
class ModelSpec:
    """A model as prediction builds it: ``model`` (registered name), ``options`` (its builder
    options as the run gave them, without pretrained weights), ``aus`` (the N AU numbers in
    output order), ``size`` (aligned-face side, pixels), ``box_enlarge`` (the alignment's
    box enlargement, :mod:`aufacs.data.align`) and ``input_spec`` (the model's
    :class:`~aufacs.models.base.InputSpec` as recorded; None where nothing was recorded)."""

    model: str
    options: dict[str, Any]
    aus: tuple[int, ...]
    size: int
    box_enlarge: float
    input_spec: dict[str, Any] | None = None

    def build(self, source: str) -> AUModel:
        """The model with random weights, on the CPU (a checkpoint's weights go in next).
        Refuses, naming ``source``, a model whose input spec is not the recorded one: the
        record was written by another version of that model's code."""
        options = builder_options(self.model, self.options, self.aus, pretrained=False)
        model = build_model(self.model, len(self.aus), **options)
        if self.input_spec is not None and self.input_spec != _input(model):
            raise AufacsError(
                f"{source} records the input {self.input_spec}, but the {self.model} model "
                f"built from it takes {_input(model)}; it was written by another aufacs version"
            )
        return model

    def record(self, model: AUModel) -> dict[str, Any]:
        """This spec, with ``model``'s input spec, as plain JSON values."""
        values = {"format": SPEC_FORMAT, **dataclasses.asdict(self), "input_spec": _input(model)}
        return json.loads(json.dumps(values))

    @classmethod
    def from_record(cls, record: Any, source: str) -> ModelSpec:
        """The spec in ``record`` (as :meth:`record` wrote it); refuses, naming ``source``, a
        record that lacks a field or holds one of the wrong type."""
        if not isinstance(record, Mapping):
            raise AufacsError(f"{source} holds no model description (a JSON object)")
        for name, kind in _FIELDS.items():
            value = record.get(name)
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise AufacsError(
                    f"{source} lacks the model field {name!r} ({kind.__name__}); it was not "
                    "written by aufacs or is damaged"
                )
        aus = record["aus"]
        if not aus or not all(isinstance(a, int) and not isinstance(a, bool) for a in aus):
            raise AufacsError(f"{source} holds AUs {aus!r}, not a list of AU numbers")
        if record["size"] < 1 or not record["box_enlarge"] > 0:
            raise AufacsError(
                f"{source} holds the aligned size {record['size']} and box enlargement "
                f"{record['box_enlarge']}; both must be positive"
            )
        return cls(
            record["model"],
            dict(record["options"]),
            tuple(aus),
            record["size"],
            float(record["box_enlarge"]),
            record.get("input_spec"),
        )


def run_model_spec(config: TrainConfig) -> ModelSpec:
    """The spec of a run trained with ``config``, its AU list and alignment read from the
    settings of the aligned-crop cache it names (not its crops); a ``stage1_weights`` option
    (what stage 2 started from) is left out, since prediction loads the run's own weights."""
    meta = read_cache_meta(cache_folder(config.data, config.cache))
    options = {k: v for k, v in config.model_options.items() if k != "stage1_weights"}
    aus, size, box_enlarge = tuple(meta["aus"]), int(meta["size"]), float(meta["box_enlarge"])
    return ModelSpec(config.model, options, aus, size, box_enlarge)


def write_model_spec(run: Path | str, config: TrainConfig, model: AUModel) -> Path:
    """Write ``<run>/model.json`` atomically for ``model``, built with the resolved ``config``
    on the aligned-crop cache it names; returns its path."""
    path = Path(run) / MODEL_FILE
    spec = run_model_spec(config)
    write_text_atomic(path, json.dumps(spec.record(model), indent=2) + "\n")
    return path


def read_model_spec(run: Path | str) -> ModelSpec:
    """The spec of run folder ``run``: its ``model.json``, else (a run written before aufacs
    recorded it) its configuration and aligned-crop cache; refuses in one sentence a run
    that has neither."""
    path = Path(run) / MODEL_FILE
    if path.is_file():
        try:
            record = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise AufacsError(f"cannot read {path}: {error}") from None
        return ModelSpec.from_record(record, str(path))
    config = load_run_config(run)
    folder = cache_folder(config.data, config.cache)
    if not (folder / META_FILE).is_file():
        raise AufacsError(
            f"run {run} has no {MODEL_FILE} (it was written before runs recorded their AU "
            f"list and alignment) and its aligned-face cache {folder} is not there either; "
            f"run `aufacs export --run {run}` where the cache is and predict with that file"
        )
    return run_model_spec(config)


def load_run_model(
    run: Path | str, epoch: int | None = None, device: str = "cpu"
) -> tuple[AUModel, ModelSpec, int]:
    """The model of run folder ``run`` with the weights of ``epoch`` (None: the last saved),
    in eval mode on ``device``, its spec and the epoch loaded. Needs no training data."""
    spec = read_model_spec(run)
    saved = checkpoint_paths(run)
    chosen = saved_epochs(run, saved, None if epoch is None else [epoch])[-1]
    model = spec.build(str(Path(run) / MODEL_FILE))
    load_state(model, load_checkpoint(saved[chosen]).get("model"), str(saved[chosen]))
    return model.to(resolve_device(device)).eval(), spec, chosen


def load_state(model: AUModel, state: Mapping[str, Any], source: str) -> None:
    """Put the weights ``state`` into ``model``; refuses, naming ``source``, weights that do
    not fit the model its spec describes."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as error:
        raise AufacsError(
            f"the weights in {source} do not fit their model ({error_gist(error)})"
        ) from None


def _input(model: AUModel) -> dict[str, Any]:
    """``model.input_spec`` as plain JSON values."""
    return json.loads(json.dumps(dataclasses.asdict(model.input_spec)))
