"""Tables of the evidence service (placeholder; owned by the evidence domain engineer)."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from nexo_messaging.tables import inbox_table, outbox_table


class Base(DeclarativeBase):
    pass


outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)
