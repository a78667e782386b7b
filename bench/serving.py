"""What the benchmarks that start a `signalbox serve` process share."""

from __future__ import annotations

import time

import httpx


def wait_healthy(base: str, seconds: float, step: float = 0.1) -> None:
    """Until `GET /healthz` answers 200: the server is up and its database reachable."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(step)
