"""A server that sends one response body in chunks at random intervals, noting when each went.

``python _trickle.py TIMES_FILE CHUNKS CHUNK_SIZE SEED``: prints its port, serves one GET, then
writes ``[[monotonic_ns, end_offset], ...]`` (when each chunk was handed to the kernel) to
TIMES_FILE. CLOCK_MONOTONIC is shared by all processes of the machine, so the client's listener
times can be compared with these. Intervals are 1-20 ms (uniform), so a progress policy that
holds bytes back shows up in the figures.
"""

from __future__ import annotations

import json
import random
import socket
import sys
import time


def main() -> None:
    times_file, chunks, size, seed = (
        sys.argv[1],
        int(sys.argv[2]),
        int(sys.argv[3]),
        int(sys.argv[4]),
    )
    rng = random.Random(seed)
    payload = bytes(size)
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        srv.settimeout(60)
        print(srv.getsockname()[1], flush=True)
        conn, _ = srv.accept()
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(65536)
                if not data:
                    return
                head += data
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n" % (chunks * size)
            )
            sent: list[tuple[int, int]] = []
            for k in range(chunks):
                time.sleep(rng.uniform(0.001, 0.020))
                t = time.monotonic_ns()
                conn.sendall(payload)
                sent.append((t, (k + 1) * size))
            conn.shutdown(socket.SHUT_WR)
            conn.settimeout(10)
            while conn.recv(65536):
                pass
    with open(times_file, "w") as f:
        json.dump(sent, f)


if __name__ == "__main__":
    main()
