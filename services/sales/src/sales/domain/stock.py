"""Stock rules (§A.4.4, DECIDE-A2): the sale's stock check, low stock and its crossing, and
available-to-promise (issue 15 item 12): a sale is admitted against the stock still free,
``disponible = stock_actual − comprometido``, where `comprometido` is what confirmed sales hold
until the SaleConfirmed consumer applies their decrement (and releases it).

Each rule is ONE comparison operator; its Python predicate and its SQL forms are rendered
from it (`sql_condition` for hand-written SQL, the operator itself applied to SQLAlchemy
columns for Core/ORM queries), so the database and the Python code cannot disagree.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sales.domain.errors import Conflict
from sales.domain.vocab import MotivoMovimiento

Comparison = Callable[[Any, Any], Any]

LOW_STOCK: Comparison = operator.le
"""A material is low ("bajo stock") when ``stock_actual LOW_STOCK stock_minimo``."""
COVERED: Comparison = operator.le
"""A sale's request is covered when ``solicitado COVERED disponible`` (else STOCK_INSUFICIENTE,
unless the sale allows backorder)."""

_SQL_OPERATORS: dict[Comparison, str] = {
    operator.le: "<=",
    operator.lt: "<",
    operator.ge: ">=",
    operator.gt: ">",
    operator.eq: "=",
}


def sql_condition(rule: Comparison, left: str, right: str) -> str:
    """The SQL text of `left rule right` (operands are SQL expressions)."""
    return f"({left} {_SQL_OPERATORS[rule]} {right})"


def is_low_stock(actual: int, minimo: int) -> bool:
    return bool(LOW_STOCK(actual, minimo))


def is_covered(solicitado: int, actual: int) -> bool:
    return bool(COVERED(solicitado, actual))


def available(actual: int, comprometido: int) -> int:
    """Stock a new sale may still take: the stock minus what confirmed sales hold."""
    return actual - comprometido


def available_sql(actual: str, comprometido: str) -> str:
    """SQL form of :func:`available` over the given column expressions."""
    return f"({actual} - {comprometido})"


def admits_sql(solicitado: str, actual: str, comprometido: str, backorder: str) -> str:
    """SQL form of the admission of a sale's quantity of one material: a backorder sale, or a
    request covered by :func:`available` (the guard of the atomic commit of `comprometido`)."""
    return f"({backorder} OR {covered_sql(solicitado, available_sql(actual, comprometido))})"


def low_stock_sql(actual: str, minimo: str) -> str:
    """SQL form of :func:`is_low_stock` over the given column expressions."""
    return sql_condition(LOW_STOCK, actual, minimo)


def covered_sql(solicitado: str, actual: str) -> str:
    """SQL form of :func:`is_covered` over the given expressions."""
    return sql_condition(COVERED, solicitado, actual)


@dataclass(frozen=True)
class MaterialStock:
    id_material: int
    nombre: str
    stock_actual: int
    stock_minimo: int
    comprometido: int = 0
    """Held by confirmed sales the SaleConfirmed consumer has not applied yet."""

    @property
    def disponible(self) -> int:
        return available(self.stock_actual, self.comprometido)


@dataclass(frozen=True)
class StockEffect:
    before: int
    after: int
    low: bool
    """Crossed to <= minimo: emit StockLow."""
    shortage: bool
    """Left the balance below zero: emit StockShortage."""


def stock_effect(before: int, delta: int, minimo: int) -> StockEffect:
    """Effect of an atomic `stock_actual += delta`. Never clamps (DECIDE-A2)."""
    after = before + delta
    low = not is_low_stock(before, minimo) and is_low_stock(after, minimo)
    shortage = delta < 0 and after < 0
    return StockEffect(before=before, after=after, low=low, shortage=shortage)


SHORTAGE_ORIGINS: frozenset[str] = frozenset(
    {MotivoMovimiento.VENTA, MotivoMovimiento.AJUSTE, MotivoMovimiento.CONTEO}
)
"""Movements that decrement stock (a consumed sale, a manual adjustment, a physical count): the
``origen`` a StockShortage names, spelled as the ledger's ``motivo``."""


def shortage_origin(motivo: str) -> str | None:
    """``origen`` of the StockShortage of a movement with this ``motivo`` (None: not a source)."""
    return str(motivo) if motivo in SHORTAGE_ORIGINS else None


def requested_per_material(lines: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Σ cantidad per material, ordered by ascending id_material (lock order)."""
    out: dict[int, int] = {}
    for material_id, cantidad in lines:
        out[material_id] = out.get(material_id, 0) + cantidad
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class StockShortfall:
    id_material: int
    material: str
    disponible: int
    solicitado: int


def shortfalls(
    materials: Mapping[int, MaterialStock], requested: Mapping[int, int]
) -> list[StockShortfall]:
    """The requests not covered by their material's `disponible`, by ascending id."""
    return [
        StockShortfall(mid, materials[mid].nombre, materials[mid].disponible, qty)
        for mid, qty in sorted(requested.items())
        if not is_covered(qty, materials[mid].disponible)
    ]


def check_stock(
    materials: Mapping[int, MaterialStock],
    requested: Mapping[int, int],
    *,
    permitir_backorder: bool,
) -> None:
    """Step 1 of §A.4.4: Σ cantidad per material ≤ disponible, unless backorder allowed."""
    if permitir_backorder:
        return
    faltantes = shortfalls(materials, requested)
    if faltantes:
        raise stock_conflict(faltantes)


def stock_conflict(faltantes: list[StockShortfall]) -> Conflict:
    """The 409 STOCK_INSUFICIENTE naming the first material short (and listing all)."""
    first = faltantes[0]
    return Conflict(
        f"Stock insuficiente de {first.material}: disponible {first.disponible}, "
        f"solicitado {first.solicitado}",
        code="STOCK_INSUFICIENTE",
        title="Stock insuficiente",
        material=first.material,
        id_material=first.id_material,
        disponible=first.disponible,
        solicitado=first.solicitado,
        faltantes=[
            {
                "id_material": f.id_material,
                "material": f.material,
                "disponible": f.disponible,
                "solicitado": f.solicitado,
            }
            for f in faltantes
        ],
    )


def projected_alerts(
    materials: Mapping[int, MaterialStock], requested: Mapping[int, int]
) -> list[dict[str, Any]]:
    """`alertas_stock` of the 201 response: one per material whose projection (its
    `disponible` after this sale: the stock once every confirmed sale is applied) is <= minimo."""
    alerts: list[dict[str, Any]] = []
    for mid, qty in sorted(requested.items()):
        m = materials[mid]
        projected = m.disponible - qty
        if is_low_stock(projected, m.stock_minimo):
            alerts.append({"nombre": m.nombre, "actual": projected, "minimo": m.stock_minimo})
    return alerts
