"""Shared pieces of the evidence routes: roles, the route class (the platform's, with the seed
endpoints' extra members), dependencies (session, writer, actor, configuration) and value
formatting.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import domain as d
from evidence.adapters import BulkWriter
from evidence.application import common
from evidence.domain import Actor
from service_defaults import errors, routing
from service_defaults.auth import CurrentUser
from service_defaults.deps import get_session
from service_defaults.errors import ProblemError, domain_problem

ROLE_RESIDENTE = d.ROLE_RESIDENTE


ROLE_REVISOR = d.ROLE_REVISOR


ROLE_SUPERVISOR = d.ROLE_SUPERVISOR


ROLE_FACTURACION = d.ROLE_FACTURACION


ROLES: tuple[str, ...] = d.ROLES
"""Roles defined by the evidence service (the gateway reuses them)."""


READERS = (*ROLES, "ops")


CAPTURE = (ROLE_RESIDENTE, ROLE_SUPERVISOR)


WORKFLOW = (ROLE_RESIDENTE, ROLE_REVISOR, ROLE_SUPERVISOR)


SEED_EXITO_PATHS = (
    "guardar_estatus_gpu",
    "guardar_reportes_diarios_masiva",
    "guardar_archivo_mensual",
)
"""Seed endpoints answering ``{exito, mensaje}``: their problems also carry both members."""


class DomainRoute(routing.DomainRoute):
    """The platform route class; an IntegrityError is not mapped here (the use cases raise the
    domain code), and the seed endpoints' problems also carry ``exito`` and ``mensaje``."""

    integrity_conflict = False

    def problem(self, request: Request, exc: errors.DomainError) -> ProblemError:
        problem = domain_problem(exc)
        if request.url.path.endswith(SEED_EXITO_PATHS):
            problem.extensions |= {"exito": False, "mensaje": exc.detail}
        return problem


Session = Annotated[AsyncSession, Depends(get_session)]


def writer_of(request: Request) -> BulkWriter:
    """The database's bulk writer, chosen once in `evidence.main.create_app`."""
    writer: BulkWriter = request.app.state.evidence_writer
    return writer


Writer = Annotated[BulkWriter, Depends(writer_of)]


def actor_of(user: CurrentUser) -> Actor:
    return Actor(user.sub, frozenset(user.roles))


def config_of(request: Request) -> common.EvidenceConfig:
    return common.config_from_settings(request.app.state.settings)


def vol(value: Decimal | None) -> str | None:
    return None if value is None else d.format_volume(Decimal(value))


def money(value: Decimal) -> str:
    return str(d.money(Decimal(value)))


def iso(value: dt.datetime | None) -> str | None:
    v = common.aware(value)
    return v.isoformat() if v else None
