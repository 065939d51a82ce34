"""The package's rooms: imports flow one way, and every module is small and says what it holds."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import aufacs

PACKAGE = Path(aufacs.__file__).parent
BENCHMARKS = PACKAGE.parent / "benchmarks"
#: Each room and the rooms it may import (itself included); data and models are siblings.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "core": frozenset({"core"}),
    "data": frozenset({"core", "data"}),
    "models": frozenset({"core", "models"}),
    "engine": frozenset({"core", "data", "models", "engine"}),
    "analysis": frozenset({"core", "data", "models", "engine", "analysis"}),
    "inference": frozenset({"core", "data", "models", "engine", "analysis", "inference"}),
    "report": frozenset({"core", "data", "models", "engine", "analysis", "inference", "report"}),
}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
MODULES = sorted(PACKAGE.rglob("*.py"))
#: The package and the benchmarks: both keep to the size and docstring rules.
SOURCES = MODULES + sorted(BENCHMARKS.glob("*.py"))


def _room(path: Path) -> str | None:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else None


def _imported_rooms(tree: ast.Module) -> set[str]:
    rooms = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "aufacs" and len(parts) > 1 and parts[1] in MAY_IMPORT:
                rooms.add(parts[1])
    return rooms


def _name(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def test_every_module_lives_in_a_room_except_the_command_line():
    loose = {p.name for p in PACKAGE.glob("*.py")}
    assert loose == {"__init__.py", "cli.py"}
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(
        MAY_IMPORT
    )


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_module_imports_a_higher_room(path):
    room = _room(path)
    if room is None:
        return
    higher = _imported_rooms(ast.parse(path.read_text())) - MAY_IMPORT[room]
    assert not higher, f"{_name(path)} ({room}) imports {sorted(higher)}"


@pytest.mark.parametrize("path", SOURCES, ids=_name)
def test_every_module_opens_with_a_sentence_and_stays_small(path):
    text = path.read_text()
    tree = ast.parse(text)
    docstring = ast.get_docstring(tree)
    assert docstring and docstring.split("\n")[0].strip(), f"{_name(path)} has no docstring"
    assert text.count("\n") <= MAX_MODULE_LINES
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{_name(path)}: {', '.join(long)}"


def test_no_code_opts_out_of_the_formatter():
    tests = sorted(Path(__file__).parent.glob("*.py"))
    marker = "fmt: " + "skip"  # spelt in two parts so that this file does not match itself
    marked = [str(p) for p in SOURCES + tests if marker in p.read_text()]
    assert not marked
