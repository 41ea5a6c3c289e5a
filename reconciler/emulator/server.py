"""The emulator's HTTP server: quotas, fault injection and call counters.

Per call, in order: count it, add latency, throttle by the operation's token
bucket (HTTP 429 ThrottlingException, as the service), inject faults, run
it. Faults are seeded so a failing run can be replayed. Everything under
`/_emulator/` is a control path Connect never uses: stats, reset, faults.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from reconciler.connect.quotas import Quota, TokenBucket, quota_for
from reconciler.emulator.backend import ConnectBackend
from reconciler.emulator.protocol import ApiError, ConnectProtocol, Response, shape_problems
from reconciler.emulator.snapshot import snapshot_of

log = logging.getLogger(__name__)

CONTROL_PREFIX = "/_emulator/"
# Operations whose effect a dropped connection may or may not have applied.
_READ_PREFIXES = ("Describe", "List", "Search", "Get")


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

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        """`error=0.05,throttle=0.2,drop_before=0.01,drop_after=0.01,latency=0.002,seed=7`
        (and `reject_users=ID+ID`)."""
        values: dict[str, Any] = {}
        names = {f.name for f in fields(cls)}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, _, raw = part.partition("=")
            if key not in names:
                raise ValueError(f"unknown fault {key!r}; known: {', '.join(sorted(names))}")
            if key == "reject_users":
                values[key] = tuple(raw.split("+"))
            else:
                values[key] = int(raw) if key == "seed" else float(raw)
        return cls(**values)


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
    ) -> None:
        self.backend = backend
        self.protocol = ConnectProtocol()
        self.stats = CallStats()
        self.quota_scale = quota_scale  # None: no throttling
        self.quotas = quotas or {}
        self._buckets: dict[str, TokenBucket] = {}
        self._buckets_lock = threading.Lock()
        self.set_faults(faults or FaultPlan())
        # Tests turn this on: every response body is checked against the
        # operation's output shape, and a misfit fails the call loudly.
        self.check_responses = check_responses
        self.checked_responses = 0
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def reset(
        self,
        backend: ConnectBackend,
        *,
        quota_scale: float | None = None,
        faults: FaultPlan | None = None,
    ) -> None:
        """Serve `backend` from now on, with fresh counters, buckets and faults."""
        self.backend = backend
        self.stats.reset()
        self.quota_scale = quota_scale
        with self._buckets_lock:
            self._buckets.clear()
        self.set_faults(faults or FaultPlan())

    def set_faults(self, faults: FaultPlan) -> None:
        """Replace the fault plan (and reseed its random source)."""
        self.faults = faults
        self._random = random.Random(faults.seed)
        self._random_lock = threading.Lock()

    def _chance(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._random_lock:
            return self._random.random() < rate

    def _bucket(self, operation: str) -> TokenBucket | None:
        if self.quota_scale is None:
            return None
        with self._buckets_lock:
            if operation not in self._buckets:
                self._buckets[operation] = TokenBucket(
                    quota_for(operation, self.quotas), self.quota_scale
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
        is_write = not name.startswith(_READ_PREFIXES)
        if is_write and labels.get("UserId") in self.faults.reject_users:
            self.stats.add(name, "client_error")
            return self.protocol.error(
                ApiError("AccessDeniedException", "Injected: this user is protected.")
            )
        try:
            params = self.protocol.parse(operation, labels, parse_qs(parts.query), headers, body)
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
            spec = json.loads(body or b"{}")
            spec["reject_users"] = tuple(spec.get("reject_users", ()))
            self.set_faults(FaultPlan(**spec))
            document = asdict(self.faults)
        elif action == "snapshot" and method == "GET":
            document = snapshot_of(self.backend)
        else:
            return Response(
                404, b'{"message": "unknown control path"}', {"Content-Type": "application/json"}
            )
        return Response(200, json.dumps(document).encode(), {"Content-Type": "application/json"})

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


def _handler_for(emulator: ConnectEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as boto3's connection pool expects
        # Headers and body leave in two writes; with Nagle on, the body waits
        # for the client's delayed ACK (40 ms a call).
        disable_nagle_algorithm = True

        def _dispatch(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
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
            self.send_response(response.status)
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.send_header("x-amzn-RequestId", "00000000-0000-4000-8000-000000000000")
            self.end_headers()
            self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_DELETE = _dispatch

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

    return Handler
