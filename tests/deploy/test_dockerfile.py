"""The Dockerfile (read, not built: nothing can pull an image here): compilers only in the
build stage, the final image runs as an unprivileged user the commands compose names."""

from __future__ import annotations

import fnmatch
import json
import re

from tests.conftest import ROOT
from tests.deploy.helpers import command, compose_services, dockerfile_stages

COMPILERS = re.compile(r"\b(build-essential|gcc|g\+\+|clang|make|cc|python3?-dev)\b")


def test_the_build_stage_compiles_and_the_final_stage_only_copies_its_environment() -> None:
    *builds, final = dockerfile_stages()
    assert builds, "one stage: the compilers would stay in the image"
    assert any(COMPILERS.search(run) for stage in builds for run in stage.arguments("RUN"))
    assert "slim" in final.base  # the full python image carries gcc
    assert not [run for run in final.arguments("RUN") if COMPILERS.search(run)]
    assert not [run for run in final.arguments("RUN") if "pip install" in run]
    copied = [args for args in final.arguments("COPY") if args.startswith("--from=")]
    assert copied and all(args.split()[0] == f"--from={builds[-1].name}" for args in copied)


def test_the_image_runs_as_a_user_and_serves_gunicorn_on_its_port() -> None:
    final = dockerfile_stages()[-1]
    users = final.arguments("USER")
    assert users and users[-1] not in ("root", "0", "0:0")
    assert final.arguments("EXPOSE") == ["8000"]
    assert final.arguments("STOPSIGNAL") == ["SIGTERM"]
    assert "/healthz" in final.arguments("HEALTHCHECK")[-1]
    # The image's default is the web, as compose names it.
    assert json.loads(final.arguments("CMD")[-1]) == command(compose_services()["web"])


def test_what_the_image_copies_is_in_the_build_context() -> None:
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = [
        source
        for stage in dockerfile_stages()
        for args in stage.arguments("COPY")
        if not args.startswith("--from=")
        for source in args.split()[:-1]
    ]
    assert {"pyproject.toml", "service", "workers", "migrations", "templates"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not [p for p in ignored if fnmatch.fnmatch(source, p)], f"{source} is ignored"
