"""Real Kafka (KRaft, jars from Maven Central) and PostgreSQL (Debian binaries) without Docker.

See ``python -m deploy.local --help`` and the root ``conftest.py``.
"""

from deploy.local._util import InfraError
from deploy.local.kafka import KafkaBroker, fetch_jars
from deploy.local.postgres import PostgresServer

__all__ = ["InfraError", "KafkaBroker", "PostgresServer", "fetch_jars"]
