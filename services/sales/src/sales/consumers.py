"""Consumers of the sales service (placeholder; owned by the sales domain engineer)."""

from __future__ import annotations

CONSUMERS: list = []
