"""Emulator throughput for a simple read, quotas off.

    python -m bench.emulator [--seconds 5]

The emulator runs in its own process (`connect-reconciler emulator serve`),
seeded with the demo snapshot; the load comes from keep-alive HTTP
connections in this process, from 1 thread and from 8, sending
ListUserProficiencies. A boto3 client is measured too, for scale: its own
per-call CPU is what the reconciler will pay. Target (issue 3): >= 1,000
requests/s, so later benchmarks measure the reconciler, not the emulator.
"""

from __future__ import annotations

import argparse
import http.client
import threading
import time
from urllib.parse import urlsplit

from bench.served import ROOT, served_emulator
from reconciler.connect.client import connect_client

DEMO = ROOT / "examples" / "demo-snapshot.json"
INSTANCE = "11111111-2222-3333-4444-555555555555"


def http_load(url: str, path: str, threads: int, seconds: float) -> float:
    """Requests per second over keep-alive connections, one per thread."""
    parts = urlsplit(url)
    counts = [0] * threads
    deadline = time.perf_counter() + seconds

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        while time.perf_counter() < deadline:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            assert response.status == 200, response.status
            counts[index] += 1
        connection.close()

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    started = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def boto3_load(url: str, user_id: str, seconds: float) -> float:
    client = connect_client(endpoint_url=url, emulator=True)
    calls = 0
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        client.list_user_proficiencies(InstanceId=INSTANCE, UserId=user_id)
        calls += 1
    return calls / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with served_emulator(DEMO) as url:
        client = connect_client(endpoint_url=url, emulator=True)
        user_id = client.list_users(InstanceId=INSTANCE, MaxResults=1)["UserSummaryList"][0]["Id"]
        path = f"/users/{INSTANCE}/{user_id}/proficiencies"
        print(f"emulator at {url}, ListUserProficiencies, quotas off, {args.seconds:.0f} s each")
        for threads in (1, 8):
            rate = http_load(url, path, threads, args.seconds)
            print(
                f"  HTTP keep-alive, {threads} thread(s): {rate:7.0f} requests/s (target >= 1000)"
            )
        rate = boto3_load(url, user_id, args.seconds)
        print(f"  boto3 client, 1 thread:        {rate:7.0f} requests/s (client CPU included)")


if __name__ == "__main__":
    main()
