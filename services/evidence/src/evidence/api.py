"""HTTP routes of the evidence service (placeholder; owned by the evidence domain engineer)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
