"""The container recipe as the tests read it: deploy/compose.yaml's services and the env file
they share, and the Dockerfile's stages."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT

COMPOSE_FILE = ROOT / "deploy" / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
PRESSROOM_SERVICES = ("migrate", "web", "worker", "beat")


def compose_services() -> dict[str, dict[str, Any]]:
    """deploy/compose.yaml's `services`, as YAML reads it (anchors and merge keys resolved)."""
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return dict(document["services"])


def command(service: dict[str, Any]) -> list[str]:
    """A service's `command` as an argument list (compose takes a list or a shell-like string)."""
    value = service["command"]
    return shlex.split(value) if isinstance(value, str) else [str(arg) for arg in value]


def env_file(path: Path) -> dict[str, str]:
    """A compose env file: `KEY=value` a line, the value taken literally (Docker's own rule);
    blank lines and lines starting with `#` are skipped. Quotes and `#` after a value are read
    differently by different tools, so the file must have none: ValueError if it does."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, separator, value = line.partition("=")
        if not separator or not re.fullmatch(r"[A-Z][A-Z0-9_]*", key):
            raise ValueError(f"{path.name}:{number}: not KEY=value")
        if value[:1] in ("'", '"') or " #" in value:
            raise ValueError(f"{path.name}:{number}: quotes or a comment after the value")
        values[key] = value
    return values


def service_env(service: dict[str, Any]) -> dict[str, str]:
    """The environment compose gives a service: its env files in order, then `environment`."""
    files = service.get("env_file", [])
    values: dict[str, str] = {}
    for name in [files] if isinstance(files, str) else files:
        values.update(env_file(COMPOSE_FILE.parent / name))
    values.update({k: str(v) for k, v in (service.get("environment") or {}).items()})
    return values


@dataclass(frozen=True)
class Stage:
    """One FROM of the Dockerfile: its base image and its instructions after FROM, each as
    (INSTRUCTION, arguments) with continuation lines joined."""

    base: str
    name: str | None
    instructions: tuple[tuple[str, str], ...]

    def arguments(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]


def dockerfile_stages() -> list[Stage]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    stages: list[Stage] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        instruction, _, arguments = line.strip().partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            words = arguments.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name, ()))
        else:
            last = stages[-1]
            stages[-1] = Stage(last.base, last.name, (*last.instructions, (instruction, arguments)))
    return stages
