"""The wheel installs exactly two packages, lrpilot and lrpilot_service, with every module of both.

The package list in pyproject.toml is explicit (the migrations folder is mapped into
lrpilot_service), so this test is what notices a new subpackage left out of it, or a checkout-only
folder (bench/, tests/) leaking into users' site-packages.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {
    "lrpilot": ROOT / "client" / "lrpilot",
    "lrpilot_service": ROOT / "service" / "lrpilot_service",
    "lrpilot_service/migrations": ROOT / "migrations",
}


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    command = [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*command, "-q", "-w", str(out)],
        check=True,
        cwd=build,
        capture_output=True,
    )
    (wheel,) = out.glob("lrpilot-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_wheel_has_only_the_two_packages(wheel_files: set[str]) -> None:
    top = {name.split("/")[0] for name in wheel_files if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"lrpilot", "lrpilot_service"}


def test_wheel_has_every_module_and_the_alembic_files(wheel_files: set[str]) -> None:
    expected = set()
    for prefix, folder in SOURCES.items():
        for path in folder.rglob("*"):
            if path.suffix in {".py", ".ini", ".mako"} and "__pycache__" not in path.parts:
                expected.add(f"{prefix}/{path.relative_to(folder).as_posix()}")
    assert expected - wheel_files == set()


def test_wheel_has_the_dashboard_and_its_vendored_assets(wheel_files: set[str]) -> None:
    static = SOURCES["lrpilot_service"] / "api" / "static"
    expected = {
        f"lrpilot_service/api/static/{p.relative_to(static).as_posix()}"
        for p in static.rglob("*")
        if p.is_file()
    }
    assert "lrpilot_service/api/static/vendor/uplot/LICENSE" in expected
    assert expected - wheel_files == set()
