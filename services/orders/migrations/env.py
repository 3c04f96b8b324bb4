"""Alembic environment of the orders service (version table `alembic_version_orders`)."""

from orders.models import metadata
from service_defaults.migrations import run_env

run_env(metadata, "alembic_version_orders")
