"""The database-specific code sits behind `evidence.adapters.BulkWriter`, chosen once per
database in `create_app` (from the configured URL, without connecting); nothing else in the
service looks at the dialect."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from evidence import consumers, main
from evidence.adapters import writer_for, writer_for_url
from evidence.adapters.portable import PortableWriter
from evidence.adapters.postgres import PostgresWriter
from evidence.settings import EvidenceSettings
from nexo_messaging.runtime import ConsumerSpec

SRC = Path(__file__).resolve().parents[1] / "src" / "evidence"


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("sqlite+aiosqlite:///./var/evidence.db", PortableWriter),
        ("postgresql+asyncpg://nexo:secret@db:5432/evidence", PostgresWriter),
        ("postgresql://nexo@db/evidence", PostgresWriter),
    ],
)
def test_writer_follows_the_database_url(url: str, kind: type) -> None:
    assert type(writer_for_url(url)) is kind


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("sqlite+aiosqlite:///./var/evidence.db", PortableWriter),
        ("postgresql+asyncpg://nexo:secret@db:5432/evidence", PostgresWriter),
    ],
)
def test_create_app_chooses_the_writer_once_for_routes_and_consumers(
    url: str, kind: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[list[ConsumerSpec]] = []
    real = consumers.build_consumers

    def spy(*args: Any, **kwargs: Any) -> list[ConsumerSpec]:
        built.append(real(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(main.consumers, "build_consumers", spy)
    app = main.create_app(EvidenceSettings(env="test", database_url=url, transport="memory"))
    writer = app.state.evidence_writer
    assert type(writer) is kind
    [[spec]] = built
    assert spec.group_id == consumers.GROUP_GPU_SYNC
    assert {h.keywords["writer"] for h in spec.handlers.values()} == {writer}  # type: ignore[attr-defined]
    assert spec.batch_handler.keywords["writer"] is writer  # type: ignore[union-attr]


def test_only_the_adapters_and_entry_points_look_at_the_dialect() -> None:
    allowed = {"adapters"}
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path.relative_to(SRC).parts[0] not in allowed
        and re.search(r"dialect\.name|dialects import|get_backend_name", path.read_text())
    ]
    assert offenders == []


def test_portable_writer_chunks_postgres_binds_one_array() -> None:
    ids = list(range(2500))
    assert [len(c) for c in writer_for("sqlite").id_chunks(ids)] == [1000, 1000, 500]
    assert writer_for("postgresql").id_chunks(ids) == [ids]
    assert writer_for("postgresql").id_chunks([]) == []
