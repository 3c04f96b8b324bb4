"""Use cases of the orders service, one module per aggregate or use-case group.

A use case takes the caller's session, writes rows, audit and outbox, and NEVER commits (the
caller commits); database-specific code reaches it as an argument (`StockStore`).
"""
