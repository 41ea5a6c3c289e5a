"""What keeps the served emulator answering whatever its clients do: a whole
request (headers and body) must arrive within a deadline, and a connection
no worker is free for is answered 503 at once instead of waiting in the
listen backlog. Without them 140 clients sending a header byte every few
seconds held every worker (a per-read timeout restarts with each byte) and
every other call queued behind them."""

from __future__ import annotations

import contextlib
import io
import queue
import selectors
import socket
import threading
import time

# How long a refused client may take to stop sending before it is cut off.
REFUSAL_LINGER = 1.0
_BUSY_BODY = b'{"message": "The emulator is serving as many connections as it can; retry"}'
BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: application/json\r\n"
    b"x-amzn-ErrorType: ServiceUnavailableException\r\n"
    b"Content-Length: " + str(len(_BUSY_BODY)).encode() + b"\r\n"
    b"Connection: close\r\n\r\n" + _BUSY_BODY
)


class DeadlineReader(io.RawIOBase):
    """A connection's reads. Between requests a read may wait `idle`
    seconds; from a request's first byte, the rest must arrive within
    `deadline` seconds however it trickles in (TimeoutError after)."""

    def __init__(self, connection: socket.socket, idle: float, deadline: float) -> None:
        self._connection = connection
        self._idle = idle
        self._deadline = deadline
        self._ends_at: float | None = None

    def readable(self) -> bool:
        return True

    # RawIOBase types the buffer as WriteableBuffer; a memoryview is what it is given
    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        timeout = self._idle
        if self._ends_at is not None:
            timeout = min(timeout, self._ends_at - time.monotonic())
            if timeout <= 0:
                raise TimeoutError(f"request not received whole within {self._deadline:g} s")
        self._connection.settimeout(timeout)
        received = self._connection.recv_into(buffer)
        if received and self._ends_at is None:
            self._ends_at = time.monotonic() + self._deadline
        return received

    def request_received(self) -> None:
        """The request is in whole: the next may wait `idle` to begin."""
        self._ends_at = None
        self._connection.settimeout(self._idle)


class Refusals:
    """Answers 503 (which botocore retries as transient) to connections no
    worker is free for, all from one thread so that refusing never holds
    the accept loop. After the answer the request is read and dropped until
    the client closes, for at most REFUSAL_LINGER seconds: closing with its
    bytes unread would reset the connection and could lose the answer."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_reader, self._wake_writer = socket.socketpair()
        for end in (self._wake_reader, self._wake_writer):
            end.setblocking(False)
        self._selector.register(self._wake_reader, selectors.EVENT_READ)
        self._incoming: queue.SimpleQueue[socket.socket] = queue.SimpleQueue()
        self._closes_at: dict[socket.socket, float] = {}
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="emulator-refusals", daemon=True)
        self._thread.start()

    def refuse(self, connection: socket.socket) -> None:
        self._incoming.put(connection)
        self._wake()

    def close(self) -> None:
        self._stopping = True
        self._wake()
        self._thread.join(timeout=5)

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # a wake-up is already pending
            self._wake_writer.send(b"\0")

    def _run(self) -> None:
        while not self._stopping:
            soonest = min(self._closes_at.values(), default=None)
            timeout = None if soonest is None else max(0.0, soonest - time.monotonic())
            for key, _ in self._selector.select(timeout):
                if key.fileobj is self._wake_reader:
                    self._take_incoming()
                else:
                    self._drain(key.fileobj)  # type: ignore[arg-type]  # only sockets are registered
            now = time.monotonic()
            for connection in [c for c, at in self._closes_at.items() if at <= now]:
                self._close(connection)
        for connection in list(self._closes_at):
            self._close(connection)
        self._selector.close()
        self._wake_reader.close()
        self._wake_writer.close()

    def _take_incoming(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._wake_reader.recv(4096):
                pass
        while not self._incoming.empty():
            connection = self._incoming.get_nowait()
            try:
                connection.setblocking(False)
                connection.send(BUSY_RESPONSE)  # far below a fresh socket's send buffer
                connection.shutdown(socket.SHUT_WR)
            except OSError:
                connection.close()
                continue
            self._selector.register(connection, selectors.EVENT_READ)
            self._closes_at[connection] = time.monotonic() + REFUSAL_LINGER

    def _drain(self, connection: socket.socket) -> None:
        try:
            if connection.recv(65536):
                return
        except BlockingIOError:
            return
        except OSError:
            pass
        self._close(connection)

    def _close(self, connection: socket.socket) -> None:
        self._closes_at.pop(connection, None)
        self._selector.unregister(connection)
        connection.close()
