"""Clients: name, phone (DECIDE-A6, E.164) and e-mail normalisation."""

from __future__ import annotations

import re
from urllib.parse import quote

from sales.domain.errors import Invalid

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalize_nombre(nombre: str | None, field: str = "nombre") -> str:
    value = (nombre or "").strip()
    if not value:
        raise Invalid("El nombre es obligatorio", code="NOMBRE_REQUERIDO", field=field)
    if len(value) > 100:
        raise Invalid("El nombre admite a lo más 100 caracteres", field=field)
    return value


def normalize_phone(telefono: str | None, field: str = "telefono") -> str | None:
    """DECIDE-A6: E.164 with Mexico's `+52` by default. Empty → None."""
    if telefono is None or not telefono.strip():
        return None
    raw = telefono.strip()
    digits = re.sub(r"\D", "", raw)
    if raw.startswith("+"):
        e164 = "+" + digits
    elif raw.startswith("00"):
        e164 = "+" + digits[2:]
    elif len(digits) == 10:
        e164 = "+52" + digits
    elif len(digits) == 12 and digits.startswith("52"):
        e164 = "+" + digits
    elif len(digits) == 13 and digits.startswith("521"):
        e164 = "+52" + digits[3:]  # legacy mobile prefix "1" dropped since 2019
    else:
        raise Invalid(f"Teléfono inválido: {telefono!r}", code="TELEFONO_INVALIDO", field=field)
    if e164.startswith("+521") and len(e164) == 14:
        e164 = "+52" + e164[4:]
    if not 8 <= len(e164) - 1 <= 15:
        raise Invalid(f"Teléfono inválido: {telefono!r}", code="TELEFONO_INVALIDO", field=field)
    return e164


def normalize_email(email: str | None, field: str = "email") -> str | None:
    if email is None or not email.strip():
        return None
    value = email.strip()
    if len(value) > 100 or not EMAIL_RE.match(value):
        raise Invalid(f"Correo inválido: {email!r}", code="EMAIL_INVALIDO", field=field)
    return value


def whatsapp_link(telefono_e164: str, texto: str = "") -> str:
    return f"https://wa.me/{telefono_e164.lstrip('+')}" + (f"?text={quote(texto)}" if texto else "")
