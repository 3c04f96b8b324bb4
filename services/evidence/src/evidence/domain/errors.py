"""Domain errors: stable DOMAIN error codes, their HTTP status and title (the base and its
problem+json mapping are `service_defaults.errors`)."""

from __future__ import annotations

from typing import Any

from service_defaults import errors

ERROR_STATUS: dict[str, int] = {
    # 400
    "MES_INVALIDO": 400,
    # 403
    "ROL_NO_AUTORIZADO": 403,
    "REVISOR_IGUAL_CARGADOR": 403,
    # 404
    "OT_NO_ENCONTRADA": 404,
    "PARTIDA_NO_ENCONTRADA": 404,
    "PRODUCCION_NO_ENCONTRADA": 404,
    "GPU_NO_ENCONTRADO": 404,
    "CONFLICTO_NO_ENCONTRADO": 404,
    "DETALLE_NO_ENCONTRADO": 404,
    "ESTIMACION_NO_ENCONTRADA": 404,
    "REPORTE_NO_ENCONTRADO": 404,
    # 409
    "TRANSICION_INVALIDA": 409,
    "GPU_FACTURADO": 409,
    "GPU_EN_PROCESO": 409,
    "ESTIMACION_ESTATUS_INVALIDO": 409,
    "CONFLICTO_RESUELTO": 409,
    "VERSION_OBSOLETA": 409,
    "MES_CERRADO": 409,
    "DIA_CERRADO": 409,
    "PRODUCCION_YA_ESTIMADA": 409,
    "OT_DUPLICADA": 409,
    "OT_PRODUCCION_FUERA_DE_PERIODO": 409,
    # 413, 415 (every uploaded file: the plan and the annex workbook)
    "ARCHIVO_EXCEDE_LIMITE": 413,
    "TIPO_ARCHIVO_NO_SOPORTADO": 415,
    # 412
    "PRECONDICION_FALLIDA": 412,
    # 422
    "ARCHIVO_REQUERIDO": 422,
    "NOTA_REQUERIDA": 422,
    "ESTIMACION_VACIA": 422,
    "DECISION_INVALIDA": 422,
    "URL_INVALIDA": 422,
    "ESTATUS_NO_GPU": 422,
    "MOTIVO_INVALIDO": 422,
    "GPU_NO_VALIDADO": 422,
    "EXCEDENTE_NO_AUTORIZADO": 422,
    "PRODUCCION_NO_ELEGIBLE": 422,
    "PRODUCCION_FUERA_DE_PERIODO": 422,
    "VOLUMEN_INVALIDO": 422,
    "VOLUMEN_ESTIMADO_INVALIDO": 422,
    "PARTIDA_INVALIDA": 422,
    "PERIODO_INVALIDO": 422,
    "DIA_INVALIDO": 422,
    "OT_PRINCIPAL_INVALIDA": 422,
    "CHECKLIST_INVALIDO": 422,
    "ESTATUS_DIARIO_INVALIDO": 422,
    "REPORTE_DUPLICADO": 422,
    "PLAN_INVALIDO": 422,
    "ENCABEZADO_INVALIDO": 422,
    "ARCHIVO_ILEGIBLE": 422,
    "PLAN_SIN_FILAS": 422,
    "EXCEL_FILAS_INVALIDAS": 422,
    "IMPORTACION_SIN_PARTIDAS": 422,
}

ERROR_TITLES: dict[str, str] = {
    "MES_INVALIDO": "El mes debe estar entre 1 y 12",
    "ROL_NO_AUTORIZADO": "El rol del usuario no permite esta operación",
    "REVISOR_IGUAL_CARGADOR": "Quien revisa no puede ser quien cargó la evidencia",
    "OT_NO_ENCONTRADA": "OT no encontrada",
    "PARTIDA_NO_ENCONTRADA": "Partida no encontrada",
    "PRODUCCION_NO_ENCONTRADA": "Producción no encontrada",
    "GPU_NO_ENCONTRADO": "Registro GPU no encontrado",
    "CONFLICTO_NO_ENCONTRADO": "Conflicto GPU no encontrado",
    "CONFLICTO_RESUELTO": "El conflicto GPU ya está resuelto",
    "ESTIMACION_ESTATUS_INVALIDO": "La estimación no admite esta operación en su estatus",
    "ESTIMACION_VACIA": "La estimación no tiene líneas",
    "DETALLE_NO_ENCONTRADO": "Línea de estimación no encontrada",
    "DECISION_INVALIDA": "Decisión de conflicto no válida",
    "ESTIMACION_NO_ENCONTRADA": "Estimación no encontrada",
    "REPORTE_NO_ENCONTRADO": "Reporte mensual no encontrado",
    "TRANSICION_INVALIDA": "Transición de estatus no permitida",
    "GPU_FACTURADO": "El GPU está vinculado a una estimación (facturado) y está bloqueado",
    "GPU_EN_PROCESO": "La producción tiene un GPU en revisión, validado o facturado",
    "VERSION_OBSOLETA": "El registro fue modificado por otra persona",
    "MES_CERRADO": "El reporte mensual está cerrado",
    "DIA_CERRADO": "El día está cerrado",
    "PRODUCCION_YA_ESTIMADA": "La producción ya está en una estimación",
    "OT_DUPLICADA": "Ya existe una OT con ese folio",
    "PRECONDICION_FALLIDA": "If-Match no coincide con la versión actual",
    "ARCHIVO_REQUERIDO": "Se requiere el link de evidencia",
    "NOTA_REQUERIDA": "Se requiere una nota o motivo",
    "URL_INVALIDA": "Link de evidencia inválido",
    "ESTATUS_NO_GPU": "El estatus no pertenece al catálogo GPU",
    "MOTIVO_INVALIDO": "Motivo de rechazo desconocido",
    "GPU_NO_VALIDADO": "Solo se pueden estimar GPUs validados",
    "EXCEDENTE_NO_AUTORIZADO": "El volumen excedente requiere autorización de un supervisor",
    "PRODUCCION_NO_ELEGIBLE": "La producción no requiere GPU",
    "PRODUCCION_FUERA_DE_PERIODO": "La producción no pertenece al periodo u OT de la estimación",
    "VOLUMEN_INVALIDO": "Volumen inválido",
    "VOLUMEN_ESTIMADO_INVALIDO": "El volumen estimado debe estar entre 0 y el volumen actual",
    "PARTIDA_INVALIDA": "La partida no pertenece a la OT",
    "PERIODO_INVALIDO": "Periodo inválido",
    "DIA_INVALIDO": "Día fuera del mes",
    "OT_PRINCIPAL_INVALIDA": "La OT principal no existe",
    "CHECKLIST_INVALIDO": "Checklist de evidencia inválido",
    "ESTATUS_DIARIO_INVALIDO": "El estatus no pertenece al catálogo de estatus operativos",
    "REPORTE_DUPLICADO": "La OT aparece más de una vez en la petición",
    "ARCHIVO_EXCEDE_LIMITE": "El archivo excede el límite",
    "TIPO_ARCHIVO_NO_SOPORTADO": "Tipo de archivo no soportado",
    "PLAN_INVALIDO": "El plan diario tiene filas con errores",
    "ENCABEZADO_INVALIDO": "Faltan columnas en el encabezado del archivo",
    "ARCHIVO_ILEGIBLE": "No se pudo leer el archivo",
    "PLAN_SIN_FILAS": "El archivo no tiene filas de plan",
    "OT_PRODUCCION_FUERA_DE_PERIODO": "Hay producción capturada fuera del periodo nuevo de la OT",
    "EXCEL_FILAS_INVALIDAS": "Hay filas del anexo con valores inválidos",
    "IMPORTACION_SIN_PARTIDAS": "El archivo no tiene partidas",
}


class DomainError(errors.DomainError):
    """A rule violation with a stable DOMAIN error code (the last segment of the problem type);
    its status and title come from the tables above, its detail defaults to the title.

    ``field`` names the offending input when there is one; ``extensions`` become extension
    members of the problem body.
    """

    def __init__(
        self,
        code: str,
        detail: str | None = None,
        *,
        field: str | None = None,
        **extensions: Any,
    ) -> None:
        title = ERROR_TITLES.get(code, code)
        super().__init__(
            code,
            detail or title,
            status=ERROR_STATUS.get(code, 422),
            title=title,
            field=field,
            **extensions,
        )


# The file-level failures of every upload (one code each, whatever the import): the body or its
# content over a bound, a media type the import does not take, a file that cannot be read.


def file_too_large(detail: str, **limits: int) -> DomainError:
    """413 ARCHIVO_EXCEDE_LIMITE; ``limits`` name the bound passed (``limite_bytes``,
    ``limite_filas``, ``limite``)."""
    return DomainError("ARCHIVO_EXCEDE_LIMITE", detail, field="archivo", **limits)


def file_type_unsupported(detail: str, accepted: list[str]) -> DomainError:
    """415 TIPO_ARCHIVO_NO_SOPORTADO; ``tipos`` lists the media types the import takes."""
    return DomainError("TIPO_ARCHIVO_NO_SOPORTADO", detail, field="archivo", tipos=accepted)


def file_unreadable(detail: str | None = None) -> DomainError:
    """422 ARCHIVO_ILEGIBLE: not a file of the kind sent (a damaged zip, a foreign workbook)."""
    return DomainError("ARCHIVO_ILEGIBLE", detail, field="archivo")
