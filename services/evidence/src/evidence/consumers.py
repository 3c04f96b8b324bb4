"""Consumers of the evidence service (placeholder; owned by the evidence domain engineer)."""

from __future__ import annotations

CONSUMERS: list = []
