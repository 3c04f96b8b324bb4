"""Former home of the orders use cases, kept only as an import path for `bench/orders/run.py`
(which another change owns): new code imports `orders.application.<module>` (use cases) and
`orders.queries` (reads). The clock lives in `orders.application.clock` (patch `now_fn` there).
"""

from __future__ import annotations

from orders.application.catalogue import (
    cambiar_estado_lote,
    crear_almacen,
    crear_institucion,
    crear_lote,
    crear_producto,
    crear_ubicacion,
)
from orders.application.clock import (
    now,
)
from orders.application.common import (
    DEFAULT_CONFIG,
    Actor,
    OrdersConfig,
    audit,
    config_from_settings,
    get_propuesta,
    get_solicitud,
    items_de,
    liberar_lineas,
    lineas_activas,
    propuesta_activa,
    replanificar,
    reservar,
    transicion_propuesta,
    transicion_solicitud,
)
from orders.application.common import lineas_activas as _lineas_activas
from orders.application.dispatch import (
    ResultadoSurtido,
    surtir_propuesta,
)
from orders.application.expiry import (
    ResultadoJob,
    job_caducidad,
)
from orders.application.generation import (
    generar_propuesta,
)
from orders.application.proposals import (
    LineaDeseada,
    editar_item_propuesta,
    liberar_propuesta,
    recoger_linea,
    revisar_propuesta,
)
from orders.application.requests import (
    Creada,
    NuevaSolicitud,
    cancelar_solicitud,
    crear_solicitud,
    editar_solicitud,
    rechazar_solicitud,
    validar_solicitud,
)
from orders.queries import (
    lote_totales,
    reporte_fill_rate,
    reporte_lotes_por_caducar,
    reporte_pendientes,
)

__all__ = [
    "DEFAULT_CONFIG",
    "Actor",
    "Creada",
    "LineaDeseada",
    "NuevaSolicitud",
    "OrdersConfig",
    "ResultadoJob",
    "ResultadoSurtido",
    "_lineas_activas",
    "audit",
    "cambiar_estado_lote",
    "cancelar_solicitud",
    "config_from_settings",
    "crear_almacen",
    "crear_institucion",
    "crear_lote",
    "crear_producto",
    "crear_solicitud",
    "crear_ubicacion",
    "editar_item_propuesta",
    "editar_solicitud",
    "generar_propuesta",
    "get_propuesta",
    "get_solicitud",
    "items_de",
    "job_caducidad",
    "liberar_lineas",
    "liberar_propuesta",
    "lineas_activas",
    "lote_totales",
    "now",
    "propuesta_activa",
    "rechazar_solicitud",
    "recoger_linea",
    "replanificar",
    "reporte_fill_rate",
    "reporte_lotes_por_caducar",
    "reporte_pendientes",
    "reservar",
    "revisar_propuesta",
    "surtir_propuesta",
    "transicion_propuesta",
    "transicion_solicitud",
    "validar_solicitud",
]
