"""Use cases of the sales service, one module per aggregate or use-case group.

Each runs inside the caller's transaction (the API route or the consumer runner commits): domain
check + rows + `enqueue(...)` of its events, so either everything is written or nothing is
(§0.3-4, no dual writes). Concurrency (§0.3-5): stock is changed only by unconditional atomic
updates (`stock_actual = stock_actual ± n ... RETURNING stock_actual`, per material in ascending
id order); payments by a conditional atomic update of `ventas.total_pagado` with the row count
checked; state transitions lock the sale row (`SELECT … FOR UPDATE`) and bump `version`.
"""
