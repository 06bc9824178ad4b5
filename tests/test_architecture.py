"""The house's one-way dependencies, checked on the source (docs/architecture.md draws them).

- the client library (``client/lrpilot``, the CLI aside) never imports ``lrpilot_service``: its one
  door into the service is ``lrpilot.transport.embedded_transport``, by module name at run time;
- the engine imports nothing of the store, the API, the web or the database;
- the store does not import the API; the service never imports the client's tuner side.

A static scan of every ``import`` (and of every string naming a module of the service, so an
``importlib`` detour is caught too), plus a run-time check that the client imports and reports a
clear error with the service made unimportable.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "client" / "lrpilot"
SERVICE = ROOT / "service" / "lrpilot_service"
ENGINE_FORBIDDEN = (
    "lrpilot_service.store",
    "lrpilot_service.api",
    "httpx",
    "sqlalchemy",
    "fastapi",
    "starlette",
)
# The client modules the service side may use: the wire contract and its small leaf helpers.
CONTRACT = ("lrpilot.protocol", "lrpilot.bounds", "lrpilot.admin_protocol", "lrpilot.errors", "lrpilot.retry")
EMBEDDED_DOOR = CLIENT / "transport.py"


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names), plus string constants that name one of ours."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and str(node.value).startswith("lrpilot_service"):
            found.add(str(node.value))
    return found


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _violations(files: list[Path], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    bad = {}
    for path in files:
        hits = sorted(name for name in _imports(path) if _under(name, forbidden))
        if hits:
            bad[str(path.relative_to(ROOT))] = hits
    return bad


def test_client_library_never_imports_the_service() -> None:
    files = [p for p in CLIENT.rglob("*.py") if "cli" not in p.relative_to(CLIENT).parts]
    bad = _violations(files, ("lrpilot_service",))
    # the one documented door: the embedded transport, imported by name
    assert bad.pop(str(EMBEDDED_DOOR.relative_to(ROOT)), None) == ["lrpilot_service.embedded"]
    assert bad == {}


def test_engine_imports_no_store_api_web_or_database() -> None:
    assert _violations(list((SERVICE / "engine").rglob("*.py")), ENGINE_FORBIDDEN) == {}


def test_store_does_not_import_the_api_or_the_embedded_mode() -> None:
    forbidden = ("lrpilot_service.api", "lrpilot_service.embedded", "fastapi", "starlette")
    assert _violations(list((SERVICE / "store").rglob("*.py")), forbidden) == {}


def test_service_uses_only_the_wire_contract_of_the_client() -> None:
    used = set()
    for path in [*SERVICE.rglob("*.py"), *(ROOT / "migrations").rglob("*.py")]:
        used |= {name for name in _imports(path) if _under(name, ("lrpilot",))}
    allowed = {"lrpilot", "lrpilot.__version__"}
    assert {name for name in used if name not in allowed and not _under(name, CONTRACT)} == set()


def test_client_imports_and_says_what_to_install_without_the_service() -> None:
    probe = """
import sys
sys.modules["lrpilot_service"] = None  # as on a client-only install
import lrpilot, lrpilot.integrations.torch, lrpilot.testing, lrpilot.transport
try:
    lrpilot.embedded_transport("sqlite:///:memory:")
except ImportError as exc:
    print(exc)
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "embedded mode needs `pip install lrpilot[server]`, or set LRPILOT_URL" in out.stdout
