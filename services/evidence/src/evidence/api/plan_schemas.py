"""HTTP schemas of the month's evidence link and of the daily plan (the families of
:mod:`evidence.api.schemas`, kept apart so neither module outgrows its size)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import Field

from evidence.api.schemas import (
    BodyModel,
    Exito,
    PartidaValores,
    PositiveId,
    PublicModel,
    ReporteMensualBase,
)
from service_defaults.bounds import DomainDate, SafeText

# --- the month's evidence link (guardar_archivo_mensual) ---------------------------------------


class ArchivoMensualUpdate(ReporteMensualBase, BodyModel):
    archivo: SafeText = Field(
        max_length=2000,
        description="Link to the month's evidence folder: https:// on an allowed host "
        "(DECIDE-C3), at most 500 characters once trimmed",
        examples=["https://drive.google.com/drive/folders/abc123"],
    )


class ArchivoMensualLegacy(ReporteMensualBase):
    """Seed body of ``guardar_archivo_mensual`` (extra members ignored); an empty or missing
    link is refused (it never clears the stored one, GP-D03): clearing is ``DELETE
    /reportes-mensuales/archivo``."""

    archivo: SafeText | None = Field(default=None, max_length=2000)


class ArchivoMensualLegacyPublic(Exito):
    archivo: str | None


class ReporteMensualArchivoPublic(PublicModel):
    """The month's report header as its evidence link shows it."""

    id: int
    id_ot: int
    mes: int
    anio: int
    cerrado: bool
    archivo: str | None
    usuario_archivo: str | None = Field(description="Who last set or cleared the link")
    fecha_archivo: str | None


# --- daily plan (partida_proyectada) -----------------------------------------------------------


class PlanDiaUpdate(BodyModel):
    id_ot: PositiveId
    id_partida_anexo: PositiveId
    fecha: DomainDate
    volumen: Decimal = Field(description="Programmed volume (≥ 0, 6 decimals); 0 clears the day")


class PlanDiaPublic(PublicModel):
    id_ot: int
    id_partida_anexo: int
    fecha: dt.date
    volumen_programado: str | None = Field(description="null: nothing planned that day")


class PlanMasivoCreate(ReporteMensualBase, BodyModel):
    partidas: list[PartidaValores] = Field(max_length=5000)


class PlanGuardadoPublic(PublicModel):
    id_ot: int
    guardados: int = Field(description="Days created or changed")
    eliminados: int = Field(description="Days cleared (volume 0)")
    sin_cambio: int


class PlanImportadoPublic(PlanGuardadoPublic):
    formato: str = Field(description="csv or xlsx")
    filas: int = Field(description="Data rows read from the file")
