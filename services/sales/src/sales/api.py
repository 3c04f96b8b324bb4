"""HTTP routes of the sales service (placeholder; owned by the sales domain engineer)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
