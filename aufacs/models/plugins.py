"""Models that other packages install: the ``aufacs.models`` entry-point group.

A package declares ``my_cnn = "my_pkg.model:build"`` under
``[project.entry-points."aufacs.models"]`` and, once installed, ``my_cnn`` is a model name like
the built-in three (``docs/your_model.md``). Installed plug-ins are listed once per process,
from the packages' metadata, without importing them; a builder is imported only when its
model is asked for.
Refused, each in one sentence naming the package: a name that a built-in model or another
package already has, and a builder that fails to import or is not callable.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection
from importlib.metadata import EntryPoint, entry_points

from aufacs.core.errors import AufacsError

#: The entry-point group that plug-in models are declared in.
GROUP = "aufacs.models"


def package_of(entry: EntryPoint) -> str:
    """The name of the distribution that declares ``entry`` (its ``pyproject.toml`` name)."""
    return entry.dist.name if entry.dist is not None else f"the package of {entry.value}"


@functools.cache
def _declared() -> tuple[EntryPoint, ...]:
    """Every installed ``aufacs.models`` entry point (read once per process)."""
    return tuple(entry_points(group=GROUP))


def installed_plugins(builtin: Collection[str]) -> dict[str, EntryPoint]:
    """``{model name: entry point}`` of the installed plug-ins, nothing imported.

    Raises AufacsError when a plug-in takes one of the ``builtin`` names or two packages
    declare the same name.
    """
    found: dict[str, EntryPoint] = {}
    for entry in _declared():
        package = package_of(entry)
        if entry.name in builtin:
            raise AufacsError(
                f"package {package} declares a model named {entry.name!r} in the {GROUP} entry "
                "points, which is a built-in model's name; rename it in that package's "
                "pyproject.toml"
            )
        other = found.get(entry.name)
        if other is not None and package_of(other) != package:
            raise AufacsError(
                f"packages {package_of(other)} and {package} both declare a model named "
                f"{entry.name!r} in the {GROUP} entry points; uninstall one or rename its model"
            )
        found[entry.name] = entry
    return found


def load_builder(entry: EntryPoint) -> Callable:
    """Import the builder that ``entry`` names; AufacsError naming the package when the
    import fails or what it names is not callable."""
    package = package_of(entry)
    try:
        builder = entry.load()
    except Exception as error:  # a plug-in's import may fail in any way
        raise AufacsError(
            f"model {entry.name!r} of package {package} could not be imported from "
            f"{entry.value} ({type(error).__name__}: {error})"
        ) from error
    if not callable(builder):
        raise AufacsError(
            f"model {entry.name!r} of package {package} names {entry.value}, which is a "
            f"{type(builder).__name__}, not a builder function or model class"
        )
    return builder


def forget_plugins() -> None:
    """Read the installed plug-ins again at the next look-up (after installing one in this
    process, e.g. in tests)."""
    _declared.cache_clear()
