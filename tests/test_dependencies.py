"""Every dependency pyproject.toml declares is used: imported somewhere in the project, or
named below with the way it is used instead. A declared dependency that nothing uses is
weight and attack surface for nothing (structlog was one: issue 10, item 21)."""

from __future__ import annotations

import ast
import re
import tomllib
from importlib.metadata import packages_distributions

from tests.conftest import ROOT

SOURCES = ("service", "workers", "tests", "bench", "migrations")

# Used, but not through an import of their own.
USED_BY_NAME = {
    "tzdata": "zone data that zoneinfo reads for TIMEZONE where the system has none",
    "pytest-timeout": "a pytest plugin: [tool.pytest.ini_options] timeout",
    "pytest-playwright": "a pytest plugin: the `page` and `browser` fixtures of tests/browser",
    "ruff": "a program: `make test` and `make lint` run it",
    "pytest-xdist": "a pytest plugin: `make test` runs the suite with -n PYTEST_WORKERS",
    "py-spy": "a program: profiling the workers during `make bench`",
}


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        requirements += extra
    return {_name(requirement) for requirement in requirements}


def _name(requirement: str) -> str:
    found = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert found, requirement
    return re.sub(r"[-_.]+", "-", found.group(0)).lower()


def imported_modules() -> set[str]:
    names: set[str] = set()
    for folder in SOURCES:
        for path in (ROOT / folder).rglob("*.py"):
            if ".venv" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names.add(node.module.split(".")[0])
    return names


def test_every_declared_dependency_is_used() -> None:
    by_module = packages_distributions()
    # A module of an extra not installed here (bench's psutil under `make test`) is taken by
    # its own name, which is its distribution's for those.
    used = {
        re.sub(r"[-_.]+", "-", dist).lower()
        for module in imported_modules()
        for dist in by_module.get(module, [module])
    }
    unused = declared() - used - set(USED_BY_NAME)
    assert not unused, f"declared in pyproject.toml but never used: {sorted(unused)}"
    assert not set(USED_BY_NAME) - declared(), "USED_BY_NAME names something not declared"
