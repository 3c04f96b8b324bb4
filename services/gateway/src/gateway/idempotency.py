"""``Idempotency-Key`` for POSTs: a retried POST gets the first answer, never a second effect.

The key is scoped per client (token ``sub``), method and path. The first request with a key
runs; concurrent requests with the same key wait for it and then replay its stored answer;
later ones replay at once. A different body under the same key answers 422. Server errors
(5xx) are not stored: the key is released and a retry runs again.

:class:`IdempotencyStore` is the seam; :class:`MemoryIdempotencyStore` (TTL, bounded) serves
one gateway process (the embedded mode). A shared store (e.g. Redis/PostgreSQL) would
implement the same three methods.
"""

from __future__ import annotations

import abc
import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Literal

HEADER = "idempotency-key"
MAX_KEY_LENGTH = 255
MAX_STORED_BODY = 1024 * 1024


@dataclass
class StoredResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass
class Entry:
    body_hash: str
    created: float
    done: asyncio.Event = field(default_factory=asyncio.Event)
    response: StoredResponse | None = None


@dataclass
class Claim:
    """Outcome of :meth:`IdempotencyStore.claim`."""

    kind: Literal["run", "replay", "mismatch", "busy"]
    response: StoredResponse | None = None


class IdempotencyStore(abc.ABC):
    @abc.abstractmethod
    async def claim(self, key: str, body_hash: str, wait: float) -> Claim:
        """``run`` (the caller executes and must then call complete/release), ``replay`` (with
        the stored response), ``mismatch`` (same key, other body) or ``busy`` (the first
        request did not finish within `wait` seconds)."""

    @abc.abstractmethod
    async def complete(self, key: str, response: StoredResponse) -> None: ...

    @abc.abstractmethod
    async def release(self, key: str) -> None:
        """Forget a running key (the request failed); waiters then run themselves."""


class MemoryIdempotencyStore(IdempotencyStore):
    def __init__(self, ttl: float = 86400.0, max_keys: int = 10_000) -> None:
        self.ttl = ttl
        self.max_keys = max_keys
        self._entries: OrderedDict[str, Entry] = OrderedDict()

    def _expire(self) -> None:
        now = time.monotonic()
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            too_many = len(self._entries) > self.max_keys
            if (now - entry.created > self.ttl or too_many) and entry.done.is_set():
                del self._entries[key]
            else:
                break

    async def claim(self, key: str, body_hash: str, wait: float) -> Claim:
        deadline = time.monotonic() + wait
        while True:
            self._expire()
            entry = self._entries.get(key)
            expired = entry is not None and time.monotonic() - entry.created > self.ttl
            if entry is not None and expired and entry.done.is_set():
                del self._entries[key]
                entry = None
            if entry is None:
                self._entries[key] = Entry(body_hash, time.monotonic())
                return Claim("run")
            if entry.body_hash != body_hash:
                return Claim("mismatch")
            if entry.done.is_set():
                if entry.response is not None:
                    return Claim("replay", entry.response)
                continue  # released: try to run ourselves
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return Claim("busy")
            try:
                await asyncio.wait_for(entry.done.wait(), remaining)
            except TimeoutError:
                return Claim("busy")

    async def complete(self, key: str, response: StoredResponse) -> None:
        entry = self._entries.get(key)
        if entry is not None:
            entry.response = response
            entry.done.set()

    async def release(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            entry.done.set()

    def __len__(self) -> int:
        return len(self._entries)
