"""Shared field types for event payloads.

`DecimalStr` is the one type for money and GPU volumes: a :class:`~decimal.Decimal` that

* validates from ``str``, ``int`` or ``Decimal`` (floats are rejected: binary floats must never
  carry money, DOMAIN §0.3.1), and rejects ``NaN`` / ``Infinity``;
* serialises to a plain decimal string in JSON mode (``"8.000000"``; never exponent notation);
* has the JSON Schema ``{"type": "string", "pattern": DECIMAL_PATTERN}``.

The value is kept exactly as given (no rounding, scale preserved): rounding is a domain decision.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

__all__ = ["DECIMAL_PATTERN", "DecimalStr", "format_decimal", "parse_decimal"]

DECIMAL_PATTERN = r"^-?\d+(\.\d+)?$"
"""Plain decimal notation: optional minus, digits, optional fraction. No exponent, no sign '+'."""


def parse_decimal(value: Any) -> Decimal:
    """Validate ``value`` (str, int or Decimal) into a finite Decimal, else ValueError."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a decimal")
    if isinstance(value, float):
        raise ValueError("floats are not accepted for decimals; send a decimal string")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            result = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"not a decimal number: {value!r}") from None
    else:
        raise ValueError(f"expected a decimal string or integer, got {type(value).__name__}")
    if not result.is_finite():
        raise ValueError("NaN and infinite decimals are not allowed")
    return result


def format_decimal(value: Decimal) -> str:
    """Plain (non-exponent) string of a finite Decimal, scale preserved: ``Decimal('8.000000')``
    -> ``"8.000000"``, ``Decimal('1E+2')`` -> ``"100"``."""
    text = format(value, "f")
    if text.startswith("-") and value == 0:
        text = text[1:]
    return text


class _DecimalStrAnnotation:
    @classmethod
    def __get_pydantic_core_schema__(
        cls, _source: Any, _handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            parse_decimal,
            serialization=core_schema.plain_serializer_function_ser_schema(
                _serialize, when_used="json"
            ),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, _core_schema: core_schema.CoreSchema, _handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "pattern": DECIMAL_PATTERN}


def _serialize(value: Decimal) -> str:
    return format_decimal(value)


DecimalStr = Annotated[Decimal, _DecimalStrAnnotation()]
"""Decimal validated from str/int/Decimal and serialised as a decimal string in JSON."""
