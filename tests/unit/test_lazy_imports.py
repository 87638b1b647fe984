"""Heavy libraries are imported inside the functions that use them (start-up time), with a
`TYPE_CHECKING` import for the annotations. mypy and ruff accept a function that forgets its own
import, since the name is known to them; at run time it is a NameError. This finds one."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def _imported(node: ast.AST) -> set[str]:
    names = set()
    for found in ast.walk(node):
        if isinstance(found, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in found.names}
    return names


def runtime_uses_of_type_only_names(source: str) -> list[tuple[int, str]]:
    """(line, name) of each run-time use of a name imported only under TYPE_CHECKING, in a
    function that does not import it itself."""
    tree = ast.parse(source)
    type_only: set[str] = set()
    module_level: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            type_only |= _imported(node)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            module_level |= _imported(node)
    type_only -= module_level
    in_annotations = {
        id(part)
        for node in ast.walk(tree)
        for attr in ("annotation", "returns")
        if getattr(node, attr, None) is not None
        for part in ast.walk(getattr(node, attr))
    }
    found = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        local = _imported(function)
        for name in ast.walk(function):
            if (
                isinstance(name, ast.Name)
                and isinstance(name.ctx, ast.Load)
                and name.id in type_only - local
                and id(name) not in in_annotations
            ):
                found.append((name.lineno, name.id))
    return sorted(set(found))


def test_the_check_finds_a_forgotten_import() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    import psutil\n"
        "def fine() -> psutil.Process:\n"
        "    import psutil\n"
        "    return psutil.Process()\n"
        "def forgotten(pid: int) -> None:\n"
        "    psutil.Process(pid)\n"
    )
    assert runtime_uses_of_type_only_names(source) == [(8, "psutil")]


def test_no_function_uses_a_name_imported_only_for_type_checking() -> None:
    problems = [
        f"{path.relative_to(SRC)}:{line}: {name}"
        for path in sorted(SRC.rglob("*.py"))
        for line, name in runtime_uses_of_type_only_names(path.read_text())
    ]
    assert problems == []
