"""The route class of the sales API: the platform's `service_defaults.routing.DomainRoute`
(domain errors → problem+json, idempotency keys, the app's write lock, `hot_route`), with
SQLite's "database is locked" answering 503 BASE_DE_DATOS_OCUPADA."""

from __future__ import annotations

from service_defaults import routing


class DomainRoute(routing.DomainRoute):
    database_busy = True
