"""One entry point for the three detectors: ``build_model(name, num_aus, **options)``."""

from __future__ import annotations

import importlib
import inspect

from aufacs.core.errors import AufacsError
from aufacs.models.base import AUModel

#: Model name -> "module:builder". Builders are imported only when asked for.
_BUILDERS: dict[str, str] = {
    "eac_net": "aufacs.models.eac_net:build_eac_net",
    "jaa_net": "aufacs.models.jaa_net:build_jaa_net",
    "me_graph_au": "aufacs.models.me_graph_au:build_me_graph_au",
}


def available_models() -> list[str]:
    """Names accepted by :func:`build_model`."""
    return sorted(_BUILDERS)


def _builder(name: str):
    if name not in _BUILDERS:
        valid = ", ".join(available_models())
        raise AufacsError(f"unknown model {name!r}; available models: {valid}")
    module_name, function_name = _BUILDERS[name].split(":")
    return getattr(importlib.import_module(module_name), function_name)


def model_options(name: str) -> list[str]:
    """The keyword options a model's builder accepts (besides ``num_aus``)."""
    parameters = inspect.signature(_builder(name)).parameters
    return [p for p in parameters if p != "num_aus"]


def build_model(name: str, num_aus: int = 12, **options) -> AUModel:
    """Build a registered AU detector by name.

    ``name``: one of :func:`available_models`. ``num_aus``: 12 for BP4D, 8 for DISFA.
    ``options``: the builder's keyword options (see :func:`model_options`), e.g.
    ``pretrained="imagenet" | None | path``. An unknown name or option raises AufacsError
    listing the valid ones.
    """
    builder = _builder(name)
    valid = model_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise AufacsError(
            f"unknown option(s) {', '.join(unknown)} for model {name!r}; valid options: "
            f"{', '.join(valid)}"
        )
    return builder(num_aus=num_aus, **options)
