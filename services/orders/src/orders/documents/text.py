"""Text for the PDF core fonts: they encode Latin-1, which covers Spanish (á é í ó ú ñ ü ¿ ¡);
any other character (a Greek µ, a dash, an emoji in a product name) is decomposed to its Latin
base when it has one, or shown as ``?``, instead of failing the whole document."""

from __future__ import annotations

import unicodedata

_SUSTITUTOS = {"\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"'}
_SUSTITUTOS |= {"\u201d": '"', "\u2026": "...", "\u03bc": "\u00b5", "\u2022": "\u00b7"}


def latin1(text: str) -> str:
    out: list[str] = []
    for ch in text:
        ch = _SUSTITUTOS.get(ch, ch)
        try:
            ch.encode("latin-1")
        except UnicodeEncodeError:
            base = unicodedata.normalize("NFKD", ch).encode("latin-1", "ignore").decode("latin-1")
            ch = base or "?"
        out.append(ch)
    return "".join(out)
