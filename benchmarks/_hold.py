"""A server that holds every request until ``n`` have arrived, then answers them all (1 KiB each).

``python _hold.py N``: prints its port, then (on release) a JSON line ``{held, of, seconds}``; serves on 127.0.0.1 until it is killed. With all
``n`` requests waiting, every client task is in flight at the same moment: what scenario f
measures (threads, RSS and sockets of ``n`` live sessions). The hold ends after 120 s even if fewer
came, so a client that sends fewer is answered and reports it; once released, later requests
are answered at once.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys

BODY = bytes(48 + i % 75 for i in range(1024))
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Length: %d\r\n\r\n" % len(BODY)
) + BODY
HOLD_SECONDS = 120
LINGER_SECONDS = 0.5  # all n held this long, so the client (sampling every 0.1 s) sees them live


async def main(n: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 2 * n + 256))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    arrived = 0
    release = asyncio.Event()
    loop = asyncio.get_running_loop()
    started = loop.time()

    def let_go() -> None:
        if not release.is_set():
            # One line for the runner: how many were held at once, and for how long.
            held = {"held": arrived, "of": n, "seconds": round(loop.time() - started, 3)}
            print(json.dumps(held), flush=True)
            release.set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal arrived
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    return
                if not release.is_set():
                    arrived += 1
                    if arrived >= n:
                        loop.call_later(LINGER_SECONDS, let_go)
                    await release.wait()
                writer.write(RESPONSE)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    loop.call_later(HOLD_SECONDS, let_go)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
