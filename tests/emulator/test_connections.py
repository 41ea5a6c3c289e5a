"""The served emulator keeps answering: a request must arrive whole within
its deadline, and a connection no worker is free for is answered 503."""

from __future__ import annotations

import contextlib
import http.client
import json
import select
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from reconciler.emulator import ConnectEmulator, backend_from_snapshot
from reconciler.emulator.server import MAX_WORKERS
from tests.conftest import INSTANCE_ID, small_snapshot

PROBE = f"/routing-profiles-summary/{INSTANCE_ID}"


def serving(request_deadline: float, read_timeout: float = 1.0) -> Iterator[ConnectEmulator]:
    emulator = ConnectEmulator(
        backend_from_snapshot(small_snapshot()),
        read_timeout=read_timeout,
        request_deadline=request_deadline,
    ).start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def served() -> Iterator[ConnectEmulator]:
    yield from serving(request_deadline=2.0)


@pytest.fixture
def held() -> Iterator[ConnectEmulator]:
    """Slow clients keep their worker long enough to probe a full pool on a
    loaded machine (opening 200 connections can take seconds there, longer
    than a 1 s idle timeout)."""
    yield from serving(request_deadline=8.0, read_timeout=5.0)


def address(emulator: ConnectEmulator) -> tuple[str, int]:
    host, port = emulator._server.server_address[:2]
    return str(host), int(port)


def closed_by_server(sock: socket.socket, wait: float) -> bool:
    """Whether the server ends the connection (after any answer) within `wait`."""
    ends_at = time.monotonic() + wait
    while (left := ends_at - time.monotonic()) > 0:
        if select.select([sock], [], [], left)[0]:
            try:
                if not sock.recv(65536):
                    return True
            except ConnectionResetError:
                return True
    return False


def test_a_request_trickling_in_is_cut_off_at_its_deadline_though_each_read_is_quick(
    served: ConnectEmulator,
) -> None:
    started = time.monotonic()
    with socket.create_connection(address(served), timeout=10) as sock:
        request = b"GET /_emulator/stats HTTP/1.1\r\nX-Slow: " + b"a" * 400
        closed = False
        for byte in request:  # one byte every 0.1 s: well inside the 1 s read timeout
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if closed_by_server(sock, 0.1):
                closed = True
                break
    elapsed = time.monotonic() - started
    assert closed, "the half-sent request was never cut off"
    assert 2.0 <= elapsed < 30.0  # the deadline, not 400 reads' worth of timeouts


def test_a_keep_alive_connection_may_idle_between_requests(served: ConnectEmulator) -> None:
    """The deadline runs from a request's first byte: five requests 0.6 s
    apart keep one connection for longer than the 2 s deadline."""
    connection = http.client.HTTPConnection(*address(served), timeout=10)
    try:
        first = None
        for request in range(5):
            if request:
                time.sleep(0.6)  # idle under the 1 s read timeout: the wait is under test
            connection.request("GET", PROBE)
            response = connection.getresponse()
            assert response.status == 200
            response.read()
            first = first or connection.sock
            assert connection.sock is first and not response.will_close
    finally:
        connection.close()


def test_slowloris_of_200_connections_leaves_probes_answered_within_a_second(
    held: ConnectEmulator,
) -> None:
    served = held
    loris = []
    for _ in range(200):  # each starts its request at once: the deadline, not idling, applies
        loris.append(socket.create_connection(address(served), timeout=10))
        with contextlib.suppress(OSError):  # one refused (503) may be closed already
            loris[-1].sendall(b"GET /_emulator/stats HTTP/1.1\r\nX-Slow: ")
    stop = threading.Event()

    def trickle() -> None:
        # A header byte to each every 0.3 s: no single read ever times out.
        while not stop.wait(0.3):
            for sock in loris:
                with contextlib.suppress(OSError):  # those the server let go
                    sock.send(b"G")

    trickler = threading.Thread(target=trickle, daemon=True)
    try:
        trickler.start()
        answers = []
        for _ in range(10):
            started = time.monotonic()
            probe = http.client.HTTPConnection(*address(served), timeout=5)
            try:
                probe.request("GET", PROBE)
                response = probe.getresponse()
                body = json.loads(response.read())
            finally:
                probe.close()
            answers.append((response.status, time.monotonic() - started))
            if response.status == 503:
                assert response.getheader("x-amzn-ErrorType") == "ServiceUnavailableException"
                assert "retry" in body["message"]
        assert all(status in (200, 503) and took < 1.0 for status, took in answers), answers
        assert any(status == 503 for status, _ in answers)  # MAX_WORKERS were all held
        # every slow connection ends: refused at once or cut at the deadline
        assert all(closed_by_server(sock, 20.0) for sock in loris)
    finally:
        stop.set()
        trickler.join(timeout=5)
        for sock in loris:
            sock.close()
    assert MAX_WORKERS < 200
    probe = http.client.HTTPConnection(*address(served), timeout=5)
    try:
        probe.request("GET", PROBE)
        assert probe.getresponse().status == 200  # every worker given back
    finally:
        probe.close()
