"""Database-facing code of the orders service: the SQL forms of domain rules and the stock
store implementations (portable and PostgreSQL), chosen once in `orders.main.create_app`."""
