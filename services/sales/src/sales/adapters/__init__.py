"""Database-specific code of the sales service behind `sales.application.pos.SaleWriter`:
the PostgreSQL statement builder (`postgres`) and the portable writer (`portable`: SQLite's
writer thread, Core inserts elsewhere), chosen ONCE per app by :func:`sale_writer_for`."""

from sqlalchemy.engine import make_url

from sales.adapters.portable import PortableSaleWriter
from sales.adapters.postgres import PostgresSaleWriter
from sales.application.pos import SaleWriter


def sale_writer_for(database_url: str) -> SaleWriter:
    """The app's sale writer for the database at `database_url` (`sales.main.create_app`)."""
    if make_url(database_url).get_backend_name() == "postgresql":
        return PostgresSaleWriter()
    return PortableSaleWriter()


__all__ = ["PortableSaleWriter", "PostgresSaleWriter", "sale_writer_for"]
