"""Who may call a route: the current user as a parameter type that requires one of the
evidence roles (401 without a token, 403 without the role), e.g. ``user: SupervisorUser``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from evidence.api.common import (
    CAPTURE,
    READERS,
    ROLE_FACTURACION,
    ROLE_REVISOR,
    ROLE_SUPERVISOR,
    WORKFLOW,
)
from service_defaults.auth import CurrentUser, require_roles

ReaderUser = Annotated[CurrentUser, Depends(require_roles(*READERS))]
"""Every evidence role and ops."""
CaptureUser = Annotated[CurrentUser, Depends(require_roles(*CAPTURE))]
"""Residente or supervisor (production capture)."""
WorkflowUser = Annotated[CurrentUser, Depends(require_roles(*WORKFLOW))]
"""Residente, revisor or supervisor (GPU transitions)."""
SupervisorUser = Annotated[CurrentUser, Depends(require_roles(ROLE_SUPERVISOR))]
RevisorUser = Annotated[CurrentUser, Depends(require_roles(ROLE_REVISOR))]
FacturacionUser = Annotated[CurrentUser, Depends(require_roles(ROLE_FACTURACION))]
