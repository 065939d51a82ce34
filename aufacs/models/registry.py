"""One entry point for every detector: ``build_model(name, num_aus, **options)``.

The three built-in detectors, and the plug-ins that other packages install through the
``aufacs.models`` entry points (:mod:`aufacs.models.plugins`, ``docs/your_model.md``).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from aufacs.core.errors import AufacsError
from aufacs.models.base import AUModel, InputSpec
from aufacs.models.plugins import installed_plugins, load_builder, package_of

#: Built-in model name -> "module:builder". Builders are imported only when asked for.
_BUILDERS: dict[str, str] = {
    "eac_net": "aufacs.models.eac_net:build_eac_net",
    "jaa_net": "aufacs.models.jaa_net:build_jaa_net",
    "me_graph_au": "aufacs.models.me_graph_au:build_me_graph_au",
}
#: The builder option that sets a built-in model's input side in pixels.
_IMAGE_SIZE_OPTIONS: dict[str, str] = {
    "eac_net": "input_size",
    "jaa_net": "crop_size",
    "me_graph_au": "input_size",
}
#: The builder option that sets a plug-in model's input side in pixels, where it takes one.
PLUGIN_IMAGE_SIZE_OPTION = "image_size"


def builtin_models() -> list[str]:
    """The names of the three built-in detectors."""
    return sorted(_BUILDERS)


def available_models() -> list[str]:
    """Names accepted by :func:`build_model`: the built-in ones, then the installed plug-ins."""
    return builtin_models() + sorted(installed_plugins(_BUILDERS))


def plugin_package(name: str) -> str | None:
    """The package (distribution) that installs model ``name``; None for a built-in model."""
    _check_name(name)
    entry = installed_plugins(_BUILDERS).get(name)
    return None if entry is None else package_of(entry)


def _check_name(name: str) -> None:
    if name not in available_models():
        valid = ", ".join(available_models())
        raise AufacsError(f"unknown model {name!r}; available models: {valid}")


def _builder(name: str) -> Callable:
    _check_name(name)
    if name in _BUILDERS:
        module_name, function_name = _BUILDERS[name].split(":")
        return getattr(importlib.import_module(module_name), function_name)
    return load_builder(installed_plugins(_BUILDERS)[name])


def model_options(name: str) -> list[str]:
    """The keyword options a model's builder accepts (besides ``num_aus``)."""
    parameters = inspect.signature(_builder(name)).parameters
    return [p for p in parameters if p != "num_aus"]


def check_options(name: str, options: Mapping[str, Any]) -> None:
    """Refuse an unknown model ``name`` or an option its builder does not take, in one
    sentence listing the valid ones."""
    valid = model_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise AufacsError(
            f"unknown option(s) {', '.join(unknown)} for model {name!r}; valid options: "
            f"{', '.join(valid)}"
        )


def image_size_option(name: str) -> str | None:
    """The builder option that sets model ``name``'s input side in pixels (``crop_size`` or
    ``input_size`` for the built-in ones, ``image_size`` for a plug-in that takes it), or None
    for a plug-in that does not."""
    if name in _IMAGE_SIZE_OPTIONS:
        return _IMAGE_SIZE_OPTIONS[name]
    return PLUGIN_IMAGE_SIZE_OPTION if PLUGIN_IMAGE_SIZE_OPTION in model_options(name) else None


def declared_recipe(name: str) -> Mapping[str, Any] | None:
    """The training recipe a plug-in declares beside its builder (its ``recipe`` attribute: a
    mapping of :class:`aufacs.engine.recipes.Recipe` fields), or None: a built-in model (its
    recipe is in the engine) or a plug-in that declares none."""
    if name in _BUILDERS:
        return None
    recipe = getattr(_builder(name), "recipe", None)
    if recipe is not None and not isinstance(recipe, Mapping):
        raise AufacsError(
            f"model {name!r} of package {plugin_package(name)} declares a recipe of type "
            f"{type(recipe).__name__}; expected a dict of recipe fields such as "
            '{"optimizer": "adamw", "lr": 0.001}'
        )
    return recipe


def build_model(name: str, num_aus: int = 12, **options) -> AUModel:
    """Build a registered AU detector by name.

    ``name``: one of :func:`available_models`. ``num_aus``: 12 for BP4D, 8 for DISFA.
    ``options``: the builder's keyword options (see :func:`model_options`), e.g.
    ``pretrained="imagenet" | None | path``. An unknown name or option raises AufacsError
    listing the valid ones, as does a plug-in whose builder does not return an
    :class:`AUModel` with an :class:`InputSpec`.
    """
    check_options(name, options)
    model = _builder(name)(num_aus=num_aus, **options)
    if not isinstance(model, AUModel) or not isinstance(
        getattr(model, "input_spec", None), InputSpec
    ):
        raise AufacsError(
            f"model {name!r} of package {plugin_package(name) or 'aufacs'} built a "
            f"{type(model).__name__} without an InputSpec; a builder must return an "
            "aufacs.models.AUModel whose input_spec is an aufacs.models.InputSpec"
        )
    return model
