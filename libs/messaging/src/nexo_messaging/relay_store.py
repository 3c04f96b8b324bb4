"""The outbox relay's SQL: claims with a lease token, settling a pass, backlog and retention.

A claim marks unpublished rows with ``lease_token``/``lease_until`` (``FOR UPDATE SKIP LOCKED``
on PostgreSQL; the lock clause is dropped on SQLite). Rows whose ``lease_until`` lies ahead (in
backoff after a failed publish, or leased by a crashed relay) hold back the later rows of their
aggregate. The protocol around these statements (who claims, failover) is described in
:mod:`nexo_messaging.relay`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Table,
    Text,
    and_,
    any_,
    bindparam,
    cast,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from nexo_messaging.encoding import utc


def claimed_columns(outbox: Table) -> list[Any]:
    """What the relay reads of a claimed row: the JSON columns as their stored text (the
    payload is emitted verbatim, no decode/encode round trip)."""
    o = outbox
    return [
        o.c.seq,
        o.c.id,
        o.c.aggregatetype,
        o.c.aggregateid,
        o.c.type,
        o.c.topic,
        cast(o.c.payload, Text).label("payload_text"),
        cast(o.c.headers, Text).label("headers_text"),
        o.c.created_at,
        o.c.attempts,
    ]


@dataclass(frozen=True)
class PublishFailure:
    """A claimed row the broker did not take: retried after ``delay`` seconds."""

    seq: int
    error: str
    delay: float


class RelayStore:
    """The statements of one relay on its service's outbox table."""

    def __init__(self, engine: AsyncEngine, outbox: Table, *, batch_size: int, lease: float):
        self.engine = engine
        self.outbox = outbox
        self.batch_size = batch_size
        self.lease = lease
        self.is_postgres = engine.dialect.name == "postgresql"

    def seq_in(self, seqs: list[int]) -> Any:
        """``seq IN (...)``; on PostgreSQL one array parameter (``seq = ANY($1)``) instead of
        thousands of bind parameters to render and send."""
        if self.is_postgres:
            return self.outbox.c.seq == any_(
                bindparam("seqs", seqs, type_=ARRAY(BigInteger()), expanding=False)
            )
        return self.outbox.c.seq.in_(seqs)

    async def claim(self, token: str, *, check_blocked: bool) -> tuple[list[Row[Any]], bool]:
        """Claim up to ``batch_size`` rows in ``seq`` order under ``token``. With
        ``check_blocked`` the rows behind a leased row of their aggregate are left out (needed
        after failures or at start-up). Returns the rows and whether leased rows were found
        (so the next pass checks again)."""
        o = self.outbox
        now = datetime.now(UTC)
        lease_until = now + timedelta(seconds=self.lease)
        claimable = (
            select(o.c.seq)
            .where(
                o.c.published_at.is_(None),
                or_(o.c.lease_until.is_(None), o.c.lease_until <= now),
            )
            .order_by(o.c.seq)
            .limit(self.batch_size)
            .with_for_update(skip_locked=True)
        )
        async with self.engine.begin() as conn:
            blocked: dict[tuple[str, str], int] = {}
            if check_blocked:
                # Rows in backoff (or leased by a crashed relay) hold back later rows of their
                # aggregate.
                blocked_rows = await conn.execute(
                    select(o.c.aggregatetype, o.c.aggregateid, func.min(o.c.seq))
                    .where(
                        o.c.published_at.is_(None),
                        o.c.lease_until.is_not(None),
                        o.c.lease_until > now,
                    )
                    .group_by(o.c.aggregatetype, o.c.aggregateid)
                )
                blocked = {(a, b): s for a, b, s in blocked_rows}
            if not blocked and self.is_postgres:
                # fast path: claim in one statement
                result = await conn.execute(
                    update(o)
                    .where(o.c.seq.in_(claimable.scalar_subquery()))
                    .values(lease_token=token, lease_until=lease_until)
                    .returning(*claimed_columns(o))
                )
                return sorted(result, key=lambda r: r.seq), False
            result = await conn.execute(
                select(*claimed_columns(o))
                .where(
                    o.c.published_at.is_(None),
                    or_(o.c.lease_until.is_(None), o.c.lease_until <= now),
                )
                .order_by(o.c.seq)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            )
            rows = [
                r
                for r in result
                if (first := blocked.get((r.aggregatetype, r.aggregateid))) is None or r.seq < first
            ]
            if rows:
                await conn.execute(
                    update(o)
                    .where(self.seq_in([r.seq for r in rows]))
                    .values(lease_token=token, lease_until=lease_until)
                )
        return rows, bool(blocked)

    async def release(self, tokens: list[str]) -> int:
        """Give back the unpublished rows claimed under ``tokens``; return how many."""
        o = self.outbox
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(o)
                .where(o.c.published_at.is_(None), o.c.lease_token.in_(tokens))
                .values(lease_token=None, lease_until=None)
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def release_all(self) -> int:
        """Release every claim of the table (a new leader: the claims are abandoned)."""
        o = self.outbox
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(o)
                .where(o.c.published_at.is_(None), o.c.lease_token.is_not(None))
                .values(lease_token=None, lease_until=None)
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def settle(
        self,
        token: str,
        published: list[int],
        failed: Sequence[PublishFailure],
        held: list[int],
    ) -> None:
        """One transaction: mark ``published`` rows, put ``failed`` rows in backoff (attempts
        + 1, the error, ``lease_until`` = the next attempt) and release the ``held`` ones."""
        o = self.outbox
        now = datetime.now(UTC)
        async with self.engine.begin() as conn:
            if published:
                await conn.execute(
                    update(o)
                    .where(self.seq_in(published))
                    .values(published_at=now, lease_token=None, lease_until=None)
                )
            for failure in failed:
                await conn.execute(
                    update(o)
                    .where(and_(o.c.seq == failure.seq, o.c.lease_token == token))
                    .values(
                        attempts=o.c.attempts + 1,
                        last_error=failure.error[:2000],
                        lease_token=None,
                        lease_until=now + timedelta(seconds=failure.delay),
                    )
                )
            if held:
                await conn.execute(
                    update(o)
                    .where(and_(self.seq_in(held), o.c.lease_token == token))
                    .values(lease_token=None, lease_until=None)
                )


async def outbox_stats(engine: AsyncEngine, outbox: Table) -> dict[str, Any]:
    """``{"backlog": unpublished rows, "oldest_age_s": age of the oldest one (0 if none)}``."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(func.count(), func.min(outbox.c.created_at)).where(
                    outbox.c.published_at.is_(None)
                )
            )
        ).one()
    oldest = utc(row[1])
    age = max(0.0, (datetime.now(UTC) - oldest).total_seconds()) if oldest is not None else 0.0
    return {"backlog": int(row[0]), "oldest_age_s": age}


async def cleanup_published(engine: AsyncEngine, outbox: Table, retention: timedelta) -> int:
    """Delete published rows older than ``retention``; return how many."""
    cutoff = datetime.now(UTC) - retention
    async with engine.begin() as conn:
        result = await conn.execute(
            delete(outbox).where(outbox.c.published_at.is_not(None), outbox.c.published_at < cutoff)
        )
    return int(getattr(result, "rowcount", 0) or 0)
