"""Client use cases (§A.4.5): create (phone as E.164, DECIDE-A6), look up, edit, and merge a
duplicate into the client kept."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sales import domain as d
from sales.application.common import Actor, audit, utcnow
from sales.domain import (
    Invalid,
    NotFound,
)
from sales.models import (
    Cliente,
    Cotizacion,
    Venta,
)


@dataclass
class ClienteIn:
    nombre: str
    telefono: str | None = None
    email: str | None = None
    direccion: str | None = None
    es_eventual: bool = False


async def create_cliente(
    s: AsyncSession, data: ClienteIn, actor: Actor, field_prefix: str = ""
) -> Cliente:
    c = Cliente(
        nombre=d.normalize_nombre(data.nombre, f"{field_prefix}nombre"),
        telefono=d.normalize_phone(data.telefono, f"{field_prefix}telefono"),
        email=d.normalize_email(data.email, f"{field_prefix}email"),
        direccion=(data.direccion or "").strip() or None,
        es_eventual=data.es_eventual,
        creado_en=utcnow(),
    )
    s.add(c)
    await s.flush()
    await audit(s, actor, "cliente", c.id_cliente, "alta")
    return c


async def get_cliente(s: AsyncSession, id_cliente: int) -> Cliente:
    c = await s.get(Cliente, id_cliente)
    if c is None:
        raise NotFound(
            f"Cliente {id_cliente} no existe", code="CLIENTE_NO_EXISTE", field="cliente_id"
        )
    return c


CONTACTO = ("telefono", "email", "direccion")
"""The contact fields a merge copies from the duplicate where the kept client has none."""


def _normalized(changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(changes)
    if "nombre" in out:
        out["nombre"] = d.normalize_nombre(out["nombre"], "nombre")
    if "telefono" in out:
        out["telefono"] = d.normalize_phone(out["telefono"], "telefono")
    if "email" in out:
        out["email"] = d.normalize_email(out["email"], "email")
    if "direccion" in out:
        out["direccion"] = (out["direccion"] or "").strip() or None
    return out


async def update_cliente(
    s: AsyncSession, id_cliente: int, changes: dict[str, Any], actor: Actor
) -> Cliente:
    """Edit a client's fields (the same normalisation as at creation); audited with the
    changed values."""
    c = await s.get(Cliente, id_cliente, with_for_update=True)
    if c is None:
        raise NotFound(f"Cliente {id_cliente} no existe", code="CLIENTE_NO_EXISTE")
    if changes.get("nombre", "") is None:
        raise Invalid("nombre no puede quedar vacío", field="nombre")
    if changes.get("es_eventual", False) is None:
        changes.pop("es_eventual")
    values = _normalized(changes)
    changed = {k: v for k, v in values.items() if getattr(c, k) != v}
    for key, value in changed.items():
        setattr(c, key, value)
    if changed:
        await audit(s, actor, "cliente", id_cliente, "edicion", payload=changed)
    await s.flush()
    return c


@dataclass
class Fusion:
    cliente: Cliente
    cotizaciones_movidas: int
    ventas_movidas: int


async def merge_clientes(
    s: AsyncSession, id_cliente: int, id_duplicado: int, actor: Actor
) -> Fusion:
    """Merge the duplicate into the kept client: its quotes and sales move to the kept client
    (their history unchanged), contact fields the kept client lacks are taken from it, and the
    duplicate row is removed; both clients' audit trails record the merge (the duplicate's
    fields and the moved ids in the payload)."""
    if id_cliente == id_duplicado:
        raise Invalid(
            "Un cliente no puede fusionarse consigo mismo",
            code="FUSION_MISMO_CLIENTE",
            field="id_duplicado",
        )
    rows = (
        await s.scalars(
            select(Cliente)
            .where(Cliente.id_cliente.in_((id_cliente, id_duplicado)))
            .order_by(Cliente.id_cliente)
            .with_for_update()
        )
    ).all()
    found = {c.id_cliente: c for c in rows}
    if id_cliente not in found:
        raise NotFound(f"Cliente {id_cliente} no existe", code="CLIENTE_NO_EXISTE")
    if id_duplicado not in found:
        raise NotFound(
            f"Cliente {id_duplicado} no existe", code="CLIENTE_NO_EXISTE", field="id_duplicado"
        )
    kept, dup = found[id_cliente], found[id_duplicado]
    ventas = list(
        (
            await s.scalars(
                select(Venta.id_venta)
                .where(Venta.id_cliente == id_duplicado)
                .order_by(Venta.id_venta)
            )
        ).all()
    )
    cotizaciones = list(
        (
            await s.scalars(
                select(Cotizacion.id_cotizacion)
                .where(Cotizacion.id_cliente == id_duplicado)
                .order_by(Cotizacion.id_cotizacion)
            )
        ).all()
    )
    for model in (Venta, Cotizacion):
        await s.execute(
            update(model)
            .where(model.id_cliente == id_duplicado)
            .values(id_cliente=id_cliente)
            .execution_options(synchronize_session=False)
        )
    copied = {k: getattr(dup, k) for k in CONTACTO if getattr(kept, k) is None and getattr(dup, k)}
    for key, value in copied.items():
        setattr(kept, key, value)
    if not dup.es_eventual and kept.es_eventual:
        kept.es_eventual = False
    duplicado = {
        "id_cliente": id_duplicado,
        "nombre": dup.nombre,
        **{k: getattr(dup, k) for k in CONTACTO},
        "es_eventual": dup.es_eventual,
    }
    payload = {"ventas": ventas, "cotizaciones": cotizaciones, "copiados": sorted(copied)}
    await audit(
        s, actor, "cliente", id_cliente, "fusion", payload={**payload, "duplicado": duplicado}
    )
    await audit(
        s, actor, "cliente", id_duplicado, "fusionado", hacia=str(id_cliente), payload=payload
    )
    await s.delete(dup)
    await s.flush()
    return Fusion(kept, len(cotizaciones), len(ventas))
