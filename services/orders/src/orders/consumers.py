"""Consumers of the orders service (placeholder; owned by the orders domain engineer)."""

from __future__ import annotations

CONSUMERS: list = []
