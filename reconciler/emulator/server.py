"""The emulator's HTTP server: quotas, fault injection and call counters.

Per call, in order: count it, add latency, throttle by the operation's token
bucket (HTTP 429 ThrottlingException, as the service), inject faults, run
it. Faults are seeded so a failing run can be replayed. Everything under
`/_emulator/` is a control path Connect never uses: stats, reset, faults.
"""

from __future__ import annotations

import io
import json
import logging
import math
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from reconciler.emulator.backend import ConnectBackend
from reconciler.emulator.connections import DeadlineReader, Refusals
from reconciler.emulator.protocol import ApiError, ConnectProtocol, Response, shape_problems
from reconciler.emulator.snapshot import SnapshotError, backend_from_snapshot, snapshot_of
from reconciler.service.model import connect_model, is_read
from reconciler.service.quotas import Quota, TokenBucket, quota_for

log = logging.getLogger(__name__)

CONTROL_PREFIX = "/_emulator/"
# Limits on what a client may send. Connect documents no body or nesting
# limit for these APIs; requests are a few KB, so the emulator chooses strict
# bounds and answers as API Gateway-fronted AWS services do (413, 400
# SerializationException) instead of holding memory or a thread.
MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 64
READ_TIMEOUT = 30.0  # seconds a connection may sit idle between requests
REQUEST_DEADLINE = 10.0  # seconds from a request's first byte to its last
MAX_WORKERS = 128  # connections served at once; more are answered 503
LISTEN_BACKLOG = 128
MAX_LATENCY = 60.0
MAX_QUOTA_SCALE = 10_000.0  # faster than any benchmark here runs; bounds the bucket arithmetic
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON text nests arrays and objects deeper than `limit`."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # it cannot nest deeper than it opens
    depth = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub(b"", body)):
        depth += 1 if bracket in b"[{" else -1
        if depth > limit:
            return True
    return False


_LIST_FAULTS = ("reject_users", "deny_operations")  # `+`-separated on the command line


@dataclass
class FaultPlan:
    """Rates (0..1) of injected failures per API call, and added latency."""

    error: float = 0.0  # 500 InternalServiceException
    throttle: float = 0.0  # extra 429 ThrottlingException
    drop_before: float = 0.0  # connection closed, the call not applied
    drop_after: float = 0.0  # connection closed after the call was applied
    latency: float = 0.0  # seconds added to every call
    seed: int = 0
    # Writes to these user ids always fail (AccessDeniedException, 403), as
    # for a user an IAM policy protects: a permanent, per-object failure.
    reject_users: tuple[str, ...] = ()
    # These operations always fail (AccessDeniedException, 403), as for a
    # policy that does not grant them.
    deny_operations: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # A nonsense plan must be refused where it is set, not make every
        # later call fail.
        for name in ("error", "throttle", "drop_before", "drop_after"):
            value = getattr(self, name)
            if not _is_number(value) or not 0 <= value <= 1:
                raise ValueError(f"fault {name} must be a rate from 0 to 1, got {value!r:.80}")
        if not _is_number(self.latency) or not 0 <= self.latency <= MAX_LATENCY:
            raise ValueError(
                f"fault latency must be 0 to {MAX_LATENCY:g} seconds, got {self.latency!r:.80}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"fault seed must be an integer, got {self.seed!r:.80}")
        users = self.reject_users
        if not isinstance(users, tuple) or not all(isinstance(u, str) for u in users):
            raise ValueError("fault reject_users must be a list of user ids")
        denied = self.deny_operations
        if not isinstance(denied, tuple) or not all(isinstance(o, str) for o in denied):
            raise ValueError("fault deny_operations must be a list of operation names")
        unknown = sorted(set(denied) - set(connect_model().operation_names))
        if unknown:
            raise ValueError(f"fault deny_operations: no Connect operation {unknown[0]!r:.80}")

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        """`error=0.05,throttle=0.2,drop_before=0.01,drop_after=0.01,latency=0.002,seed=7`
        (and `reject_users=ID+ID`, `deny_operations=ListUsers+SearchUsers`)."""
        values: dict[str, Any] = {}
        names = {f.name for f in fields(cls)}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, _, raw = part.partition("=")
            if key not in names:
                raise ValueError(f"unknown fault {key!r}; known: {', '.join(sorted(names))}")
            if key in _LIST_FAULTS:
                values[key] = tuple(raw.split("+"))
            else:
                try:
                    values[key] = int(raw) if key == "seed" else float(raw)
                except ValueError:
                    raise ValueError(f"fault {key} must be a number, got {raw!r:.80}") from None
        return cls(**values)

    @classmethod
    def from_json(cls, document: Any) -> FaultPlan:
        """A plan from the control endpoint's JSON object; ValueError on nonsense."""
        if not isinstance(document, dict):
            raise ValueError("the fault plan must be a JSON object")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(document) - names)
        if unknown:
            raise ValueError(f"unknown fault(s) {unknown!r:.80}; known: {', '.join(sorted(names))}")
        lists = {key: document.get(key, []) for key in _LIST_FAULTS}
        for key, value in lists.items():
            if not isinstance(value, list):
                raise ValueError(f"fault {key} must be a list")
        return cls(**{**document, **{key: tuple(value) for key, value in lists.items()}})


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    # an int is finite however large (math.isfinite would overflow on it)
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


class CallStats:
    """Calls per operation and how they ended, readable while serving."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, Counter[str]] = {}

    def add(self, operation: str, outcome: str) -> None:
        with self._lock:
            self._counts.setdefault(operation, Counter())[outcome] += 1

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def snapshot(self) -> dict[str, dict[str, int]]:
        """{operation: {"calls": n, "ok": n, "throttled": n, "error": n, ...}}."""
        with self._lock:
            return {op: dict(counts) for op, counts in sorted(self._counts.items())}

    def calls(self, operation: str) -> int:
        return self.snapshot().get(operation, {}).get("calls", 0)

    def total(self, outcome: str) -> int:
        return sum(c.get(outcome, 0) for c in self.snapshot().values())


class _Drop(Exception):
    """Close the connection without answering."""


class ConnectEmulator:
    """The Connect API for one backend over HTTP on 127.0.0.1."""

    def __init__(
        self,
        backend: ConnectBackend,
        *,
        quota_scale: float | None = None,
        quotas: dict[str, Quota] | None = None,
        faults: FaultPlan | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        check_responses: bool = False,
        read_timeout: float = READ_TIMEOUT,
        request_deadline: float = REQUEST_DEADLINE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.clock = clock  # the quota buckets' time (tests inject one)
        self.protocol = ConnectProtocol()
        self.stats = CallStats()
        self.quotas = quotas or {}
        self._buckets: dict[str, TokenBucket] = {}
        self._buckets_lock = threading.Lock()
        self.set_quota_scale(quota_scale)  # None: no throttling
        self.set_faults(faults or FaultPlan())
        # Tests turn this on: every response body is checked against the
        # operation's output shape, and a misfit fails the call loudly.
        self.check_responses = check_responses
        self.checked_responses = 0
        self._server = _BoundedServer(
            (host, port), _handler_for(self, read_timeout, request_deadline)
        )
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def reset(
        self,
        backend: ConnectBackend,
        *,
        quota_scale: float | None = None,
        faults: FaultPlan | None = None,
        quotas: dict[str, Quota] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Serve `backend` from now on, with fresh counters, quotas, buckets
        and faults, the buckets on `clock`."""
        self.backend = backend
        self.quotas = quotas or {}
        self.clock = clock
        self.stats.reset()
        self.set_quota_scale(quota_scale)
        self.set_faults(faults or FaultPlan())

    def set_faults(self, faults: FaultPlan) -> None:
        """Replace the fault plan (and reseed its random source)."""
        self.faults = faults
        self._random = random.Random(faults.seed)
        self._random_lock = threading.Lock()

    def set_quota_scale(self, scale: float | None) -> None:
        """Enforce the quotas `scale` times faster than real time from now on
        (None: not at all), every bucket full; a consistency lag runs as fast."""
        with self._buckets_lock:
            self.quota_scale = scale
            self._buckets.clear()
            self.backend.time_scale = scale or 1.0

    def share_quotas(self, other: ConnectEmulator) -> None:
        """Throttle on `other`'s buckets from now on: Connect's quotas are the
        account's in a region, so two instances there draw on one per API."""
        with other._buckets_lock:
            self._buckets, self._buckets_lock = other._buckets, other._buckets_lock

    def _chance(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._random_lock:
            return self._random.random() < rate

    def _bucket(self, operation: str) -> TokenBucket | None:
        with self._buckets_lock:  # the scale may change meanwhile (set_quota_scale)
            if self.quota_scale is None:
                return None
            if operation not in self._buckets:
                self._buckets[operation] = TokenBucket(
                    quota_for(operation, self.quotas), self.quota_scale, clock=self.clock
                )
            return self._buckets[operation]

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        """Answer one API request (raises _Drop to close without answering)."""
        parts = urlsplit(target)
        found = self.protocol.match(method, parts.path)
        if found is None:
            message = json.dumps({"message": f"No route for {method} {parts.path}"}).encode()
            return Response(404, message, {"x-amzn-ErrorType": "UnknownOperationException"})
        operation, labels = found
        name = operation.name
        self.stats.add(name, "calls")
        if name in self.faults.deny_operations:
            self.stats.add(name, "client_error")
            return self.protocol.error(
                ApiError("AccessDeniedException", f"Injected: {name} is not allowed.")
            )
        if self.faults.latency > 0:
            time.sleep(self.faults.latency)
        bucket = self._bucket(name)
        if (bucket is not None and bucket.try_take() > 0) or self._chance(self.faults.throttle):
            self.stats.add(name, "throttled")
            return self.protocol.error(ApiError("ThrottlingException", "Rate exceeded."))
        if self._chance(self.faults.error):
            self.stats.add(name, "error")
            return self.protocol.error(ApiError("InternalServiceException", "Injected failure."))
        if self._chance(self.faults.drop_before):
            self.stats.add(name, "dropped")
            raise _Drop
        is_write = not is_read(name)
        if is_write and labels.get("UserId") in self.faults.reject_users:
            self.stats.add(name, "client_error")
            return self.protocol.error(
                ApiError("AccessDeniedException", "Injected: this user is protected.")
            )
        try:
            params = self.protocol.parse(operation, labels, parse_qs(parts.query), headers, body)
            # Serialized under the backend's lock: a response shows the state
            # of one moment, never half of a concurrent write (or a user it
            # deleted meanwhile).
            with self.backend.lock:
                response = self.protocol.serialize(operation, self.backend.call(operation, params))
        except ApiError as error:
            self.stats.add(name, "client_error")
            return self.protocol.error(error)
        if is_write and self._chance(self.faults.drop_after):
            self.stats.add(name, "dropped")
            raise _Drop
        self.stats.add(name, "ok")
        if self.check_responses and operation.output_shape is not None:
            problems = shape_problems(operation.output_shape, json.loads(response.body))
            if problems:
                raise AssertionError(f"{name} response does not fit the model: {problems[:3]}")
            self.checked_responses += 1
        return response

    def control(self, method: str, path: str, body: bytes) -> Response:
        """The emulator's own endpoints: stats, reset, faults, snapshot."""
        action = path.removeprefix(CONTROL_PREFIX)
        if action == "stats" and method == "GET":
            document: Any = self.stats.snapshot()
        elif action == "reset" and method == "POST":
            self.stats.reset()
            document = {}
        elif action == "faults" and method == "PUT":
            try:
                self.set_faults(FaultPlan.from_json(json.loads(body or b"{}")))
            except ValueError as error:  # JSONDecodeError and UnicodeDecodeError included
                return _json_response(400, {"message": str(error)})
            document = asdict(self.faults)
        elif action == "quota-scale" and method == "PUT":
            try:
                scale = json.loads(body)["scale"]
            except (ValueError, TypeError, KeyError):
                scale = "missing"
            if scale is not None and not (_is_number(scale) and 0 < scale <= MAX_QUOTA_SCALE):
                wanted = f"a number over 0 and up to {MAX_QUOTA_SCALE:g}, or null"
                return _json_response(400, {"message": f'send {{"scale": {wanted}}}'})
            self.set_quota_scale(scale)
            document = {"scale": scale}
        elif action == "snapshot" and method == "GET":
            document = snapshot_of(self.backend)
        elif action == "snapshot" and method == "PUT":
            # Serve another state from now on (quotas and faults as they are):
            # a benchmark starts each round afresh without a new process.
            try:
                backend = backend_from_snapshot(json.loads(body or b"{}"))
            except (ValueError, SnapshotError, RecursionError) as error:
                return _json_response(400, {"message": str(error)})
            self.reset(backend, quota_scale=self.quota_scale, faults=self.faults,
                       quotas=self.quotas, clock=self.clock)  # fmt: skip
            document = {}
        else:
            return _json_response(404, {"message": "unknown control path"})
        return _json_response(200, document)

    def start(self) -> ConnectEmulator:
        """Serve on a background thread; returns self for chaining."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="connect-emulator", daemon=True
        )
        self._thread.start()
        log.info("Connect emulator listening on %s", self.url)
        return self

    def serve_forever(self) -> None:
        """Serve on this thread until interrupted."""
        self._server.serve_forever()

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ConnectEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _json_response(status: int, document: Any, error_type: str = "") -> Response:
    headers = {"Content-Type": "application/json"}
    if error_type:
        headers["x-amzn-ErrorType"] = error_type
    return Response(status, json.dumps(document).encode(), headers)


class _BoundedServer(ThreadingHTTPServer):
    """A thread per connection, at most MAX_WORKERS at once.

    A connection that finds every worker busy is answered 503 at once (a
    client waiting in the backlog would wait for as long as the slowest
    holds its worker); idle ones give their worker back after the read
    timeout, half-sent ones after the request deadline.
    """

    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._workers = threading.BoundedSemaphore(MAX_WORKERS)
        self._refusals = Refusals()
        super().__init__(address, handler)

    def server_close(self) -> None:
        super().server_close()
        self._refusals.close()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._workers.acquire(blocking=False):
            self._refusals.refuse(request)
            return
        worker = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True
        )
        try:
            worker.start()
        except BaseException:
            # A worker that started gives its slot back itself: releasing here
            # too would raise ValueError in place of a Ctrl-C (SIGTERM) that
            # lands right after start(), and the server would never stop.
            if worker.ident is None:
                self._workers.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._workers.release()


def _handler_for(
    emulator: ConnectEmulator, read_timeout: float, request_deadline: float
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as boto3's connection pool expects
        # Headers and body leave in two writes; with Nagle on, the body waits
        # for the client's delayed ACK (40 ms a call).
        disable_nagle_algorithm = True
        timeout = read_timeout

        def setup(self) -> None:
            super().setup()
            self.rfile.close()  # the socket stays open: only this file on it closes
            self._reader = DeadlineReader(self.connection, read_timeout, request_deadline)
            self.rfile = io.BufferedReader(self._reader)

        def _body(self) -> bytes | Response:
            """The request body, or the error response that refuses it."""
            if "Transfer-Encoding" in self.headers:
                return _json_response(
                    400,
                    {"message": "Transfer-Encoding is not supported; send Content-Length"},
                    "SerializationException",
                )
            raw = (self.headers.get("Content-Length") or "0").strip()
            if not raw.isdigit() or not raw.isascii():
                return _json_response(
                    400,
                    {"message": f"Content-Length {raw!r:.40} is not a non-negative integer"},
                    "SerializationException",
                )
            length = int(raw)
            if length > MAX_BODY_BYTES:
                return _json_response(
                    413,
                    {"message": f"request body over {MAX_BODY_BYTES} bytes"},
                    "RequestEntityTooLargeException",
                )
            body = self.rfile.read(length) if length else b""
            if len(body) < length:
                raise ConnectionError("client closed before sending the whole body")
            if json_too_deep(body):
                return _json_response(
                    400,
                    {"message": f"request body nests deeper than {MAX_JSON_DEPTH} levels"},
                    "SerializationException",
                )
            return body

        def _dispatch(self) -> None:
            try:
                body = self._body()
            except (ConnectionError, TimeoutError):
                self.close_connection = True
                return
            self._reader.request_received()
            if isinstance(body, Response):
                # The unread body (if any) would be taken for the next request.
                self.close_connection = True
                self._send(body)
                return
            try:
                if self.path.startswith(CONTROL_PREFIX):
                    response = emulator.control(self.command, urlsplit(self.path).path, body)
                else:
                    response = emulator.handle(self.command, self.path, dict(self.headers), body)
            except _Drop:
                self.close_connection = True
                return
            except Exception as exc:
                log.exception("emulator failure on %s %s", self.command, self.path)
                response = emulator.protocol.error(
                    ApiError("InternalServiceException", f"Emulator failure: {exc}")
                )
            self._send(response)

        def _send(self, response: Response) -> None:
            self.send_response(response.status)
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.send_header("x-amzn-RequestId", "00000000-0000-4000-8000-000000000000")
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_DELETE = _dispatch

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

    return Handler
