"""The SQL forms of the stock eligibility rule, rendered from the domain's constants.

`orders.domain.existencia_elegible` is the one definition (lot estado `ELIGIBLE_LOT_STATE`,
location state in `ELIGIBLE_LOCATION_STATES`, location active, warehouse active); this module
only translates it: SQLAlchemy where-clauses for the ORM/Core reads, and a text fragment for the
hand-written PostgreSQL statements. `test_orders_eligibility.py` checks each form against the
Python predicate on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import ColumnElement

from orders import domain as d
from orders.models import Almacen, Lote, LoteUbicacion, Ubicacion


def existencia_elegible_where() -> list[ColumnElement[bool]]:
    """`domain.existencia_elegible` over `Lote`, `Ubicacion` and `Almacen` (joined)."""
    return [
        Lote.estado == d.ELIGIBLE_LOT_STATE,
        Ubicacion.estado.in_(d.ELIGIBLE_LOCATION_STATES),
        Ubicacion.activo.is_(True),
        Almacen.activo.is_(True),
    ]


def elegible_fefo_where(almacen_id: int, umbral: date) -> list[Any]:
    """`domain.elegible_fefo` (destination warehouse, eligible stock, caducidad > umbral),
    plus free stock left (net > 0: a row without it can never be allocated)."""
    return [
        Ubicacion.almacen_id == almacen_id,
        *existencia_elegible_where(),
        Lote.fecha_caducidad > umbral,
        LoteUbicacion.cantidad > LoteUbicacion.cantidad_reservada,
    ]


def fefo_order_by() -> list[Any]:
    """`domain.FEFO_ORDER` over `Lote`, `Ubicacion` and `LoteUbicacion` (joined); SQLite
    compares text as BINARY, i.e. byte-wise [DECIDE-B7]."""
    columns = {
        "fecha_caducidad": Lote.fecha_caducidad,
        "numero_lote": Lote.numero_lote,
        "lote_id": Lote.id,
        "ubicacion_codigo": Ubicacion.codigo,
        "lote_ubicacion_id": LoteUbicacion.id,
    }
    return [columns[key] for key in d.FEFO_ORDER]


def fefo_order_sql(columns: dict[str, str]) -> str:
    """`domain.FEFO_ORDER` as a PostgreSQL ORDER BY list over the given column expressions,
    text keys in C collation (byte-wise, [DECIDE-B7])."""
    return ", ".join(
        f'{columns[key]} COLLATE "C"' if key in d.FEFO_TEXT_KEYS else columns[key]
        for key in d.FEFO_ORDER
    )


def vigente_where(today: date) -> ColumnElement[bool]:
    """`domain.vigente`: caducidad on or after `today` (NULL never passes a comparison)."""
    return Lote.fecha_caducidad >= today


def elegible_linea_manual_where(almacen_id: int, today: date) -> list[ColumnElement[bool]]:
    """What `domain.verificar_linea_manual` accepts, the shelf-life threshold aside (that one
    needs a Supervisor override): eligible stock of the destination warehouse, not expired."""
    return [Ubicacion.almacen_id == almacen_id, *existencia_elegible_where(), vigente_where(today)]


def _literal(value: str) -> str:
    if "'" in value:
        raise ValueError(f"unexpected quote in a vocabulary value: {value!r}")
    return f"'{value}'"


def existencia_elegible_sql(*, lote: str, ubicacion: str, almacen_activo: str) -> str:
    """`domain.existencia_elegible` as a SQL condition over the aliases `lote` (lotes) and
    `ubicacion` (ubicaciones); `almacen_activo` is the SQL expression of the warehouse flag.

    The lot estado is a literal so that every plan, generic ones included, can use the partial
    index `ix_lotes_fefo` (``WHERE estado = 1``)."""
    estados = ", ".join(_literal(e) for e in d.ELIGIBLE_LOCATION_STATES)
    return (
        f"{lote}.estado = {int(d.ELIGIBLE_LOT_STATE)} AND {ubicacion}.estado IN ({estados}) "
        f"AND {ubicacion}.activo AND {almacen_activo}"
    )
