"""Alembic environment of the evidence service (version table `alembic_version_evidence`)."""

from evidence.models import Base
from service_defaults.migrations import run_env

run_env(Base.metadata, "alembic_version_evidence")
