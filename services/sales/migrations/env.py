"""Alembic environment of the sales service (version table `alembic_version_sales`)."""

from sales.models import Base
from service_defaults.migrations import run_env

run_env(Base.metadata, "alembic_version_sales")
