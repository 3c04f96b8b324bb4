"""Money arithmetic and formatting: ROUND_HALF_UP to cents is the only rounding (§A.4.1)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0")


def money(value: Decimal) -> Decimal:
    """ROUND_HALF_UP to cents (the only rounding this domain uses)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def format_plain(value: Decimal) -> str:
    """Plain decimal string (never exponent notation), scale preserved."""
    text = format(value, "f")
    return text[1:] if text.startswith("-") and value == 0 else text


def format_money(value: Decimal) -> str:
    """Money as a string with exactly two decimals (``"187.80"``)."""
    return format_plain(money(value))
