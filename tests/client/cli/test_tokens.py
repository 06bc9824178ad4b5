"""``lrpilot tokens``, ``lrpilot tenants`` and ``lrpilot jobs prune`` on the database itself."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lrpilot.cli import main
from lrpilot.cli.prune import duration_s
from lrpilot.protocol import JobCreate, TunerConfig
from lrpilot_service.store import open_repository
from lrpilot_service.store.access import hash_token
from lrpilot_service.store.models import Token


def test_tokens_create_prints_the_secret_once_on_the_last_line_and_stores_a_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["tokens", "create", "--tenant", "team", "--admin", "--database-url", url]) == 0
    out = capsys.readouterr().out
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("lrp_") and len(secret) > 40 and "admin token" in out
    repository = open_repository(url)
    try:
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        with Session(repository.engine) as session:
            (stored,) = session.scalars(select(Token)).all()
        assert stored.secret_hash == hash_token(secret) and secret not in repr(stored.__dict__)
        assert repository.access.authenticate(secret).admin
    finally:
        repository.close()
    assert main(["tokens", "list", "--database-url", url]) == 0
    listing = capsys.readouterr().out
    assert "team" in listing and secret not in listing and secret[:12] in listing
    assert main(["tokens", "revoke", "1", "--database-url", url]) == 0
    assert "revoked token 1" in capsys.readouterr().out
    assert main(["tokens", "revoke", "7", "--database-url", url]) == 1
    assert main(["tenants", "set", "team", "--max-jobs", "5", "--database-url", url]) == 0
    assert "5" in capsys.readouterr().out


def test_jobs_prune_deletes_jobs_older_than_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'prune.db'}"
    repository = open_repository(url)
    repository.create_or_attach("t", JobCreate(name="old", config=TunerConfig(total_steps=100)))
    repository.close()
    assert main(["jobs", "prune", "--older-than", "1h", "--database-url", url]) == 0
    assert "deleted 0 job(s)" in capsys.readouterr().out
    time.sleep(2.2)
    assert main(["jobs", "prune", "--older-than", "1s", "--status", "running", "--database-url", url]) == 0
    assert "deleted 1 job(s)" in capsys.readouterr().out
    assert [duration_s(t) for t in ("90", "15m", "12h", "30d", "2w")] == [90, 900, 43200, 2592000, 1209600]
    with pytest.raises(SystemExit):
        main(["jobs", "prune", "--older-than", "soon", "--database-url", url])
