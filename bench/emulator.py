"""Emulator throughput, quotas off.

    python -m bench.emulator [--seconds 5] [--users 50000]

The emulator runs in its own process (`connect-reconciler emulator serve`);
the load comes from keep-alive HTTP connections in this process.

- Demo snapshot, ListUserProficiencies from 1 thread and from 8, and through
  a boto3 client for scale (its own per-call CPU is what the reconciler
  pays). Target (issue 3): >= 1,000 requests/s.
- A synthetic instance of `--users` users (20 attributes x 10 values, 8
  proficiencies each), 1 thread: SearchUsers by username, SearchUsers the
  way the search read asks (one value's level bit, 500 a page, walking
  every page of every value in turn, so most pages are a new query), and
  ListUsers pages (100 and 1,000 a page, walking every page). The emulator
  keeps each user's JSON, redone by each write to that user, and the
  results of recent searches until any user is written: each figure is
  given with a write (TagResource on a user) before every pass and with
  reads only.
  Target (issue 12): >= 1,000 requests/s at 50,000 users.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

from bench.served import ROOT, served_emulator
from bench.synthetic import INSTANCE_ID, Shape, snapshot_of_state, synthetic_state
from reconciler.connect.client import connect_client
from reconciler.connect.reader import proficiency_condition
from reconciler.files import write_json_atomically

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


Request = tuple[str, str, bytes | None]  # method, path, body
# A source yields requests, and None where a pass (what one plan would
# read) ends; it is sent each response's NextToken to follow pages.
Source = Callable[[dict], Iterator[Request | None]]
_TOKEN_AT_END = re.compile(rb',"NextToken":"([^"]*)"(?:,"ApproximateTotalCount":\d+)?\}$')


def next_token(body: bytes) -> str | None:
    """A page's NextToken, read from the end of the body without parsing the
    rest (the load generator's JSON decoding is not the emulator's time)."""
    found = _TOKEN_AT_END.search(body[-512:])
    return found.group(1).decode() if found else None


def sequence_load(url: str, requests: Source, write: Request | None, seconds: float) -> float:
    """Requests per second from one keep-alive connection, sending what
    `requests` yields. With `write`, it is sent (not counted) before every
    pass, as when a plan follows an apply (the emulator's search results are
    redone); without, one pass is sent before the clock starts, so every
    timed pass finds what the emulator keeps between reads."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)

    def send(request: Request) -> bytes:
        method, path, body = request
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        document = response.read()
        assert response.status == 200, (response.status, document[:200])
        return document

    last: dict = {}
    calls = 0
    source = requests(last)
    if write is None:
        for request in iter(lambda: next(source), None):
            last["NextToken"] = next_token(send(request))
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    if write is not None:
        send(write)
    while time.perf_counter() < deadline:
        request = next(source)
        if request is None:
            if write is not None:
                send(write)
            continue
        last["NextToken"] = next_token(send(request))
        calls += 1
    connection.close()
    return calls / (time.perf_counter() - started)


def search_pages(criteria: list[dict], page_size: int) -> Source:
    """Every page of each criteria in turn; a pass is every criteria once."""

    def requests(last: dict) -> Iterator[Request | None]:
        while True:
            for search in criteria:
                token = None
                while True:
                    body = {"InstanceId": INSTANCE_ID, "MaxResults": page_size}
                    body["SearchCriteria"] = search
                    if token:
                        body["NextToken"] = token
                    yield "POST", "/search-users", json.dumps(body).encode()
                    token = last.get("NextToken")
                    if not token:
                        break
            yield None

    return requests


def list_pages(page_size: int) -> Source:
    """Every ListUsers page; a pass is every page once."""

    def requests(last: dict) -> Iterator[Request | None]:
        token = None
        while True:
            path = f"/users-summary/{INSTANCE_ID}?maxResults={page_size}"
            yield "GET", path + (f"&nextToken={quote(token)}" if token else ""), None
            token = last.get("NextToken")
            if not token:
                yield None

    return requests


def synthetic_load(users: int, seconds: float) -> None:
    shape = Shape(users=users, attributes=20, values=10, proficiencies=8)
    state = synthetic_state(shape)
    with tempfile.TemporaryDirectory() as tmp:
        snapshot = Path(tmp) / "snapshot.json"
        write_json_atomically(snapshot, snapshot_of_state(state))
        with served_emulator(snapshot) as url:
            print(f"emulator with {users} users x {shape.proficiencies} proficiencies, "
                  f"{shape.attributes} attributes x {shape.values} values, 1 thread, "
                  f"{seconds:.0f} s each, with a write before every pass and reads only "
                  "(target >= 1000 requests/s)")  # fmt: skip
            client = connect_client(endpoint_url=url, emulator=True)
            arn = client.list_users(InstanceId=INSTANCE_ID, MaxResults=1)["UserSummaryList"][0]
            tag = json.dumps({"tags": {"bench": "pass"}}).encode()
            write = ("POST", f"/tags/{quote(arn['Arn'], safe='')}", tag)
            names = sorted(state.users)
            exact = {"FieldName": "Username", "ComparisonType": "EXACT"}
            by_name = [
                {"StringCondition": {**exact, "Value": n}}
                for n in names[:: max(1, len(names) // 1000)]
            ]
            bits = [
                proficiency_condition(a.name, v, levels=levels)
                for a in state.attributes.values()
                for v in a.values
                for levels in ((1, 3, 5), (2, 3), (4, 5))
            ]
            for title, requests in (
                ("SearchUsers, Username EXACT", search_pages(by_name, 500)),
                ("SearchUsers, value level bit, 500/page", search_pages(bits, 500)),
                ("ListUsers, 100/page", list_pages(100)),
                ("ListUsers, 1000/page", list_pages(1000)),
            ):
                written = sequence_load(url, requests, write, seconds)
                reads = sequence_load(url, requests, None, seconds)
                print(
                    f"  {title:40} after a write {written:5.0f}, reads only {reads:5.0f} requests/s"
                )


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
    parser.add_argument("--users", type=int, default=50_000)
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
    synthetic_load(args.users, args.seconds)


if __name__ == "__main__":
    main()
