"""The README's event catalogue names every event type and topic of the contracts."""

from __future__ import annotations

from pathlib import Path

from contracts.registry import REGISTRY
from contracts.topics import TOPICS

README = Path(__file__).resolve().parents[1] / "README.md"


def catalogue() -> str:
    text = README.read_text(encoding="utf-8")
    return text[text.index("## Event catalogue") : text.index("## Benchmarks")]


def test_every_event_type_is_in_the_catalogue() -> None:
    missing = [ce_type for ce_type in REGISTRY if f"`{ce_type}`" not in catalogue()]
    assert missing == []


def test_every_topic_and_its_key_is_in_the_catalogue() -> None:
    text = catalogue()
    missing = [t.name for t in TOPICS.values() if f"`{t.name}`, `{t.key}`" not in text]
    assert missing == []
