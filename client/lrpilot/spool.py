"""Steps the service never got, kept on local disk until the next attach replays them.

When ``Tuner.close()`` cannot reach the service within its deadline (an outage covering the end of
the run), the unreported steps are written to one small JSON file per job, and the next ``Tuner``
of that job (same service URL, tenant and name) replays them as soon as it attaches, before its
own steps. The file is written atomically (a temporary file renamed over it) and removed once the
service has the steps.

Where: ``spool_dir=``, else ``$LRPILOT_SPOOL_DIR``, else ``<snapshot_dir>/unreported`` when the tuner
has a ``snapshot_dir``, else ``$XDG_CACHE_HOME/lrpilot/unreported`` (``~/.cache/lrpilot/unreported``).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from pydantic import ValidationError

from lrpilot.bounds import Measurement
from lrpilot.protocol import WireModel
from lrpilot.window import StepBuffer

SPOOL_ENV = "LRPILOT_SPOOL_DIR"
SPOOL_VERSION = 1


class SpoolFile(WireModel):
    """The file's content: whose steps they are, and the steps (any number: no report cap here)."""

    version: int = SPOOL_VERSION
    service: str
    tenant: str | None
    job: str
    start_step: int
    losses: list[Measurement]
    grad_norms: list[Measurement | None]
    lrs: list[float]
    val_losses: dict[int, Measurement]


def spool_dir(explicit: str | os.PathLike[str] | None, snapshot_dir: str | os.PathLike[str] | None) -> Path:
    """The directory of unreported steps, by the rules in the module docstring."""
    if explicit is not None:
        return Path(explicit)
    if os.environ.get(SPOOL_ENV):
        return Path(os.environ[SPOOL_ENV])
    if snapshot_dir is not None:
        return Path(snapshot_dir) / "unreported"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "lrpilot" / "unreported"


class Spool:
    """The spool file of one job on one service."""

    def __init__(self, directory: Path, service: str, tenant: str | None, job: str) -> None:
        self.service, self.tenant, self.job = service, tenant, job
        key = hashlib.sha256(f"{service}\n{tenant}\n{job}".encode()).hexdigest()[:16]
        self.path = directory / f"{job[:80]}-{key}.json"

    def save(self, buffer: StepBuffer) -> None:
        """Write the buffer's steps (atomically: a crash leaves the old file or the new one)."""
        body = SpoolFile(
            service=self.service,
            tenant=self.tenant,
            job=self.job,
            start_step=buffer.start,
            losses=buffer.losses,
            grad_norms=buffer.grad_norms,
            lrs=buffer.lrs,
            val_losses=buffer.val_losses,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".spool-")
        try:
            with os.fdopen(handle, "w") as out:
                out.write(body.model_dump_json())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def load(self) -> StepBuffer | None:
        """The spooled steps as a buffer, or None (no file, or one that is not ours to replay)."""
        try:
            body = SpoolFile.model_validate_json(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValidationError):
            self.path.rename(self.path.with_suffix(".unreadable"))
            return None
        if (body.service, body.tenant, body.job) != (self.service, self.tenant, self.job):
            return None
        buffer = StepBuffer(body.start_step)
        buffer.losses, buffer.grad_norms, buffer.lrs = body.losses, body.grad_norms, body.lrs
        buffer.val_losses = body.val_losses
        return buffer

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
