"""The container files agree with the code: pins, CLI commands, setting names, and the upgrade step.

No Docker engine is needed: the files are read as text, and the entrypoint's commands are run
through the real CLI (``db upgrade`` for real on a temp SQLite, ``serve`` with the server stubbed).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect

from lrpilot_service.api.settings import Settings
from lrpilot_service.store.db import create_db_engine

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
SETTING_NAMES = {f"LRPILOT_{name.upper()}" for name in Settings.model_fields}


def parse_yaml_subset(text: str) -> Any:
    """Block maps, block lists and plain/quoted scalars: the subset docker-compose.yml keeps to."""
    lines = []
    for raw in text.splitlines():
        if raw.strip() and not raw.lstrip().startswith("#"):
            lines.append((len(raw) - len(raw.lstrip()), raw.strip()))

    def scalar(value: str) -> Any:
        return value[1:-1] if value[:1] in "\"'" and value[-1:] == value[:1] else (value or None)

    def block(index: int, indent: int) -> tuple[Any, int]:
        if lines[index][1].startswith("- "):
            items = []
            while index < len(lines) and lines[index][0] == indent and lines[index][1].startswith("- "):
                items.append(scalar(lines[index][1][2:].strip()))
                index += 1
            return items, index
        mapping: dict[str, Any] = {}
        while index < len(lines) and lines[index][0] == indent:
            key, _, rest = lines[index][1].partition(":")
            index += 1
            if rest.strip():
                mapping[key] = scalar(rest.strip())
            elif index < len(lines) and lines[index][0] > indent:
                mapping[key], index = block(index, lines[index][0])
            else:
                mapping[key] = None
        return mapping, index

    return block(0, 0)[0]


COMPOSE = parse_yaml_subset((ROOT / "docker-compose.yml").read_text())


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


def test_torch_cpu_is_pinned_before_the_server_extra() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pin = next(
        dep for dep in pyproject["project"]["optional-dependencies"]["server"] if dep.startswith("torch")
    )
    runs = [line for line in DOCKERFILE.splitlines() if line.startswith("RUN pip install")]
    torch_at = next(i for i, line in enumerate(runs) if pin in line)
    server_at = next(i for i, line in enumerate(runs) if ".[server]" in line)
    assert torch_at < server_at and "download.pytorch.org/whl/cpu" in runs[torch_at]
    assert re.findall(r"^FROM (.+)$", DOCKERFILE, re.MULTILINE) == ["python:3.11-slim"]


def test_entrypoint_is_valid_shell_and_upgrades_before_serving() -> None:
    subprocess.run(["sh", "-n", str(ENTRYPOINT)], check=True)
    assert os.access(ENTRYPOINT, os.X_OK)
    assert [command[:2] for command in _entrypoint_commands()] == [["db", "upgrade"], ["serve", "--host"]]
    assert re.search(r"^exec lrpilot serve ", ENTRYPOINT.read_text(), re.MULTILINE)
    assert "lrpilot-entrypoint" in DOCKERFILE and "docker/entrypoint.sh" in DOCKERFILE


def test_entrypoint_commands_run_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lrpilot import cli
    from lrpilot_service.api import serve

    database_url = f"sqlite:///{tmp_path / 'entry.db'}"
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
    assert database["image"] == "postgres:16" and "pg_isready" in database["healthcheck"]["test"]
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
