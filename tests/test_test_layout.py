"""Test modules never import each other (issue 11, item 4): what several of them share lives in
a conftest.py (fixtures) or a helpers module (functions and constants), so that a test module
can be moved, renamed or run alone. Every tests/**/test_*.py is parsed, not imported."""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
TEST_MODULE = re.compile(r"(^|\.)test_[^.]*$")


def every_test_module() -> list[Path]:
    return sorted(TESTS.rglob("test_*.py"))


def is_test_module(name: str) -> bool:
    """`tests.test_x`, `tests.web.test_x`; relative names (`.test_x`) count too."""
    return (name.startswith(("tests.", ".")) or name == "tests") and bool(TEST_MODULE.search(name))


def imported_test_modules(path: Path) -> list[str]:
    """Each import in `path` (at any depth, also inside functions) of a test module of tests/,
    as "line N: name", in the order of the lines."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            # `from tests.web import test_x` imports a test module as a name.
            names = [module] + [f"{module.rstrip('.')}.{alias.name}" for alias in node.names]
        else:
            continue
        found += [(node.lineno, name) for name in names if is_test_module(name)]
    return [f"line {line}: {name}" for line, name in sorted(found)]


def test_the_test_modules_are_found() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in every_test_module()}
    assert {"tests/test_layers.py", "tests/web/test_desk_login.py"} <= names


def test_the_check_sees_each_kind_of_import(tmp_path: Path) -> None:
    sample = tmp_path / "test_sample.py"
    sample.write_text(
        "from tests.web.test_desk_login import log_in\n"
        "import tests.test_entry_points\n"
        "from tests.web import test_doorbell\n"
        "from .test_control import delivery\n"
        "def f():\n"
        "    from tests.test_entry_points import stop\n"
        "from tests.web.helpers import form\n"
        "from tests.conftest import csrf_token\n"
    )
    assert imported_test_modules(sample) == [
        "line 1: tests.web.test_desk_login",
        "line 2: tests.test_entry_points",
        "line 3: tests.web.test_doorbell",
        "line 4: .test_control",
        "line 6: tests.test_entry_points",
    ]


def test_no_test_module_imports_another() -> None:
    offenders = {
        path.relative_to(ROOT).as_posix(): found
        for path in every_test_module()
        if (found := imported_test_modules(path))
    }
    assert offenders == {}, (
        "move what is shared into a conftest.py (fixtures) or a helpers module, and import it "
        "from there"
    )
