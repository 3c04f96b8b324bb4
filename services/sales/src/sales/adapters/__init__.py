"""Database-specific code of the sales service: the PostgreSQL statement builder (`postgres`)
and the portable writer on a SQLite file (`portable`), chosen once per engine."""
