"""The container files agree with the code: pins, CLI commands, setting names, and the upgrade step.

No Docker engine is needed: docker-compose.yml is parsed with PyYAML, the Dockerfile read as text,
the constraints checked against pyproject.toml, and the entrypoint's commands run through the
real CLI on SQLite and PostgreSQL (``db upgrade`` for real, ``serve`` stubbed), then the
entrypoint script itself runs against PostgreSQL until ``/healthz`` answers.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from sqlalchemy import inspect

from lrpilot_service.api.settings import Settings
from lrpilot_service.store.db import create_db_engine

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
SETTING_NAMES = {f"LRPILOT_{name.upper()}" for name in Settings.model_fields}


COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _entrypoint_commands() -> list[list[str]]:
    """The entrypoint's `lrpilot ...` commands, with ${LRPILOT_PORT:-8000} expanded to its default."""
    commands = []
    for line in ENTRYPOINT.read_text().splitlines():
        words = shlex.split(line.replace("${LRPILOT_PORT:-8000}", "8000"), comments=True)
        if words[:1] == ["exec"]:
            words = words[1:]
        if words[:1] == ["lrpilot"]:
            commands.append([word for word in words[1:] if word != "$@"])
    return commands


def test_the_image_installs_the_pinned_server_extra_and_no_torch() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    server = pyproject["project"]["optional-dependencies"]["server"]
    assert not [dep for dep in server if re.match(r"(torch|botorch|gpytorch)\b", dep)]  # numpy/scipy only
    runs = [line for line in DOCKERFILE.splitlines() if line.startswith("RUN pip install")]
    (server_at,) = [i for i, line in enumerate(runs) if ".[server]" in line]
    assert "-c constraints.txt" in runs[server_at] and "COPY docker/constraints.txt" in DOCKERFILE
    pins = [line for line in (ROOT / "docker" / "constraints.txt").read_text().splitlines() if "==" in line]
    assert not [pin for pin in pins if "torch" in pin.lower()]
    (base,) = re.findall(r"^FROM (.+)$", DOCKERFILE, re.MULTILINE)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base), (
        f"base image {base} is not pinned to a patch release"
    )
    assert re.search(r"^USER (?!root)\w+", DOCKERFILE, re.MULTILINE) and "HEALTHCHECK" in DOCKERFILE


def test_constraints_pin_every_server_requirement() -> None:
    pins = {}
    for line in (ROOT / "docker" / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = [*pyproject["project"]["dependencies"], *pyproject["project"]["optional-dependencies"]["server"]]
    for text in wanted:
        requirement = Requirement(text)
        pinned = pins.get(canonicalize_name(requirement.name))
        assert pinned is not None, f"{requirement.name} is not pinned in docker/constraints.txt"
        assert requirement.specifier.contains(pinned.split("+")[0], prereleases=True), (text, pinned)


def test_entrypoint_is_valid_shell_and_upgrades_before_serving() -> None:
    subprocess.run(["sh", "-n", str(ENTRYPOINT)], check=True)
    assert os.access(ENTRYPOINT, os.X_OK)
    assert [command[:2] for command in _entrypoint_commands()] == [["db", "upgrade"], ["serve", "--host"]]
    assert re.search(r"^exec lrpilot serve ", ENTRYPOINT.read_text(), re.MULTILINE)
    assert "lrpilot-entrypoint" in DOCKERFILE and "docker/entrypoint.sh" in DOCKERFILE


def test_entrypoint_commands_run_through_the_cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from lrpilot import cli
    from lrpilot_service.api import serve

    monkeypatch.setenv("LRPILOT_DATABASE_URL", database_url)
    upgrade_step, serve_step = _entrypoint_commands()
    assert cli.main(upgrade_step) in (0, None)  # the real migration, as in the container
    engine = create_db_engine(database_url)
    try:
        assert {"tenants", "jobs", "observations", "decisions"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(serve, "run", lambda *args, **kwargs: calls.append((*args, *kwargs.values())))
    assert cli.main(serve_step) in (0, None)
    assert calls and calls[0][:2] == ("0.0.0.0", 8000)


def test_entrypoint_migrates_and_serves(database_url: str, tmp_path: Path) -> None:
    """The entrypoint script as the container runs it, on a fresh database (PostgreSQL as in compose)."""
    from lrpilot.cli.server_process import free_port, wait_healthy

    port = free_port()
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"  # the `lrpilot` of this environment
    env = {**os.environ, "LRPILOT_DATABASE_URL": database_url, "LRPILOT_PORT": str(port),
           "LRPILOT_LOG_LEVEL": "warning", "PATH": path}  # fmt: skip
    with open(tmp_path / "entrypoint.log", "wb") as log:
        process = subprocess.Popen(["sh", str(ENTRYPOINT)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process.poll, timeout_s=60)
        health = httpx.get(f"http://127.0.0.1:{port}/healthz").json()
        assert health == {"status": "ok", "database": "ok"}
        engine = create_db_engine(database_url)
        try:
            assert {"tenants", "jobs", "observations", "decisions"} <= set(inspect(engine).get_table_names())
        finally:
            engine.dispose()
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_environment_names_are_settings_fields() -> None:
    service = COMPOSE["services"]["lrpilot"]
    environment = service["environment"]
    assert set(environment) <= SETTING_NAMES
    dockerfile_env = set(re.findall(r"\b(LRPILOT_[A-Z_]+)=", DOCKERFILE))
    assert dockerfile_env and dockerfile_env <= SETTING_NAMES
    Settings(**{key.removeprefix("LRPILOT_").lower(): value for key, value in environment.items()})


def test_compose_wires_the_service_to_a_healthy_postgres() -> None:
    services = COMPOSE["services"]
    database, service = services["db"], services["lrpilot"]
    assert (
        re.fullmatch(r"postgres:16\.\d+", database["image"])
        and "pg_isready" in database["healthcheck"]["test"]
    )
    assert database["volumes"] == ["pgdata:/var/lib/postgresql/data"] and "pgdata" in COMPOSE["volumes"]
    assert service["environment"]["LRPILOT_AUTH"] == "required"
    assert service["depends_on"]["db"]["condition"] == "service_healthy"
    assert service["build"] == {"context": ".", "dockerfile": "docker/Dockerfile"}
    url = service["environment"]["LRPILOT_DATABASE_URL"]
    credentials = database["environment"]
    expected = (
        f"postgresql+psycopg://{credentials['POSTGRES_USER']}:{credentials['POSTGRES_PASSWORD']}@db:5432/"
    )
    assert url == expected + credentials["POSTGRES_DB"]
    port = service["environment"]["LRPILOT_PORT"]
    assert service["ports"] == [f"{port}:{port}"] and f"EXPOSE {port}" in DOCKERFILE
