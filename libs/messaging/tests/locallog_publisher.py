"""A process that writes outbox rows and relays them to the local event log until it is killed
(``test_messaging_locallog.py``: the process killed between publish and consume).

Usage: ``python locallog_publisher.py <database url> <log path> <topic>``; prints ``ready``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from messaging_harness import Env, metadata
from sqlalchemy.ext.asyncio import create_async_engine

from nexo_messaging.runtime import build_transport


async def main(url: str, log_path: str, topic: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    env = Env("local", engine, build_transport("local", local_path=log_path), topic, "unused")
    await env.runtime([]).start()
    print("ready", flush=True)
    n = 0
    while True:  # until SIGKILL: every write is picked up by the relay at once
        await env.write([(i % 9, n + i) for i in range(10)])
        n += 10
        await asyncio.sleep(0.005)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
