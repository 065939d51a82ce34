"""Small dataclass configurations, shared by the command line and JSON files.

A configuration is a frozen dataclass whose fields carry a ``help`` text in their metadata
(``field(default=..., metadata={"help": "..."})``). This module turns such a class into
command-line flags and reads or writes it as JSON, refusing unknown keys with one sentence.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from aufacs.core.errors import AufacsError
from aufacs.core.io import write_text_atomic

Config = TypeVar("Config")


def _field_type(cls: type, field: dataclasses.Field) -> type:
    """The plain type of a field (``int | None`` -> ``int``), resolving string annotations."""
    hint = typing.get_type_hints(cls)[field.name]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if typing.get_origin(hint) in (tuple, list, dict):
        return typing.get_origin(hint)
    return hint


def _element_type(cls: type, field: dataclasses.Field) -> type:
    """The type of a tuple or list field's items (``tuple[int, ...]`` -> ``int``; str where
    the hint does not say)."""
    hint = typing.get_type_hints(cls)[field.name]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    items = [arg for arg in typing.get_args(hint) if arg is not Ellipsis]
    return items[0] if len(items) == 1 and items[0] in (int, float, str, Path) else str


def _json_object(text: str) -> dict[str, Any]:
    """A command-line JSON object, e.g. ``'{"crop_size": 64}'``."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not a JSON object: {error}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text}")
    return value


def add_config_arguments(
    parser: argparse.ArgumentParser, cls: type, exclude: tuple[str, ...] = ()
) -> None:
    """Add one ``--flag`` per field of dataclass ``cls`` but ``exclude`` (defaults: the
    dataclass's own)."""
    for field in dataclasses.fields(cls):
        if field.name in exclude:
            continue
        flag = "--" + field.name.replace("_", "-")
        kind = _field_type(cls, field)
        help_text = field.metadata.get("help", "")
        if kind is bool:
            parser.add_argument(
                flag,
                dest=field.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        elif kind in (tuple, list):
            parser.add_argument(
                flag,
                dest=field.name,
                nargs="+",
                type=_element_type(cls, field),
                default=None,
                help=help_text,
            )
        elif kind is dict:
            parser.add_argument(
                flag, dest=field.name, type=_json_object, default=None, help=help_text
            )
        else:
            parser.add_argument(flag, dest=field.name, type=kind, default=None, help=help_text)


def config_from_args(
    cls: type[Config], args: argparse.Namespace, base: Config | None = None
) -> Config:
    """Build ``cls`` from parsed flags; flags left unset keep ``base``'s (or the default) value."""
    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(cls)
        if getattr(args, f.name, None) is not None
    }
    return config_from_dict(cls, given, base=base)


def config_from_dict(
    cls: type[Config],
    values: dict[str, Any],
    base: Config | None = None,
    source: str = "configuration",
) -> Config:
    """Build ``cls`` from a dict; unknown keys are refused with a sentence listing valid ones."""
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise AufacsError(
            f"unknown key(s) {', '.join(unknown)} in {source}; valid keys: {', '.join(names)}"
        )
    converted = {}
    for field in dataclasses.fields(cls):
        if field.name in values:
            kind = _field_type(cls, field)
            value = values[field.name]
            if value is not None and kind in (tuple, Path):
                value = kind(value)
            converted[field.name] = value
    start = base if base is not None else cls()
    return dataclasses.replace(start, **converted)


def config_to_dict(config: Any) -> dict[str, Any]:
    """A dataclass configuration as a dict of plain values (paths as strings)."""
    return {
        k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(config).items()
    }


def save_config(config: Any, path: Path) -> None:
    """Write a dataclass configuration as indented JSON (paths as strings), atomically."""
    data = config_to_dict(config)
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def load_config(cls: type[Config], path: Path) -> Config:
    """Read a JSON configuration written by :func:`save_config` (unknown keys refused)."""
    try:
        values = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise AufacsError(f"cannot read configuration {path}: {error}") from None
    return config_from_dict(cls, values, source=str(path))
