"""The HTTP(S) front of the simulator and the `K8sSim` object tests hold.

Transport: `http.server.ThreadingHTTPServer` speaking HTTP/1.1 with keep-alive, one thread
per connection; TLS is negotiated in the connection's thread (a slow or broken client never
blocks the accept loop). Authentication is what a real API server does first: a valid
bearer token (`sim.tokens`, token -> user name; changeable while running, to test token
rotation) or a client certificate signed by the simulator's CA (user = CN, groups = O);
anything else is 401 with a `Status` body.

Bodies: JSON or YAML, and protobuf for the kinds typed client-go clients send (protobuf.py:
Helm's release storage). Answers are JSON; `Warning: 299` headers carry the unknown fields a
write dropped (validation.py).

Test hooks (all thread-safe):
- `sim.request_log`: every request with method, path, query, content type, Accept, body,
  status, user, user agent and timing (see `RequestRecord`), logged when its answer starts.
- `sim.history(kind, name)`: every state an object went through (a deleted hook Job too).
- `sim.fault(...)`: make matching requests fail N times (any status, 429 with
  Retry-After), answer slowly, drop the connection without answering, or cut the answer
  midway (`cut=`: in its headers, in its body; a watch in a chunk or in an event) after
  the request was carried out; `sim.admission_deny(...)`: a 422 as a validating admission
  policy refuses a write.
- `sim.put/get/objects/delete/patch/set_pod_phase/wait_for`: direct store access.
- `sim.kubeconfig(path, user=...)`: a kubeconfig for kubectl, Helm or chartreuse.

Stopping is clean: the server closes the listening socket, wakes every watch, shuts down
every open connection and joins the threads, so nothing is left behind for pytest.
"""
import base64
import copy
import json
import os
import re
import select
import socket
import ssl
import sys
import threading
import time
import traceback
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from . import protobuf, rbac, tables
from .api import Api, ApiError, Ctx, NO_RESOURCE, bad_request, invalid
from .certs import shared_authority
from .controller import ControllerManager
from .discovery import K8S_VERSION, Registry
from .store import Store
from .validation import VALUES as FIELD_VALIDATION
from .watch import Watch, WatchError

REPO = Path(__file__).resolve().parents[2]
EDS_CRD = REPO / "deploy" / "crd-expecteddeploymentscales.yaml"
AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = \
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"

# The CRD used when deploy/ does not have one (kept in step with it).
FALLBACK_EDS_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "expecteddeploymentscales.wiremind.io"},
    "spec": {"group": "wiremind.io", "scope": "Namespaced",
             "names": {"kind": "ExpectedDeploymentScale",
                       "listKind": "ExpectedDeploymentScaleList",
                       "plural": "expecteddeploymentscales",
                       "singular": "expecteddeploymentscale", "shortNames": ["eds"]},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {
                               "type": "object", "required": ["spec"],
                               "properties": {"spec": {
                                   "type": "object",
                                   "required": ["deploymentName", "expectedScale"],
                                   "properties": {
                                       "deploymentName": {"type": "string"},
                                       "expectedScale": {"type": "integer"},
                                       "priority": {"type": "integer", "default": 0}}}}}}}]}}


# --- request log ----------------------------------------------------------------------

@dataclass
class RequestRecord:
    method: str
    path: str
    query: dict            # parameter -> first value
    raw_query: str
    content_type: str
    body: bytes
    accept: str = ""
    user: str = ""
    user_agent: str = ""
    status: int = 0
    time: float = 0.0      # time.monotonic() when the request arrived
    wall: float = 0.0      # time.time() when the request arrived
    duration: float = 0.0
    fault: str = ""        # what injected fault, if any, answered
    denied: bool = False   # refused by RBAC (a 403 that is not admission's)
    logged: bool = False   # already in the log (watches are logged when they start)

    @property
    def watch(self):
        return self.query.get("watch") in ("1", "true")

    def json(self):
        if self.content_type.startswith(protobuf.CONTENT_TYPE):
            return protobuf.decode(self.body)
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return yaml.safe_load(self.body)

    def __str__(self):
        q = f"?{self.raw_query}" if self.raw_query else ""
        return f"{self.method} {self.path}{q} -> {self.status}"


class RequestLog:
    """Append-only, thread-safe list of RequestRecords; iterate for a snapshot."""

    def __init__(self):
        self._lock = threading.Lock()
        self._items = []

    def append(self, rec):
        with self._lock:
            self._items.append(rec)

    def __iter__(self):
        with self._lock:
            return iter(list(self._items))

    def __len__(self):
        with self._lock:
            return len(self._items)

    def __getitem__(self, i):
        with self._lock:
            return self._items[i]

    def clear(self):
        with self._lock:
            self._items.clear()

    def filter(self, method=None, path=None, status=None, watch=None):
        """Records whose method equals `method`, whose path matches the regex `path`
        (re.search), with that status / watch-ness."""
        rx = re.compile(path) if path else None
        return [r for r in self
                if (method is None or r.method == method.upper())
                and (rx is None or rx.search(r.path))
                and (status is None or r.status == status)
                and (watch is None or r.watch == watch)]


# --- fault injection ------------------------------------------------------------------

CUTS = ("header", "body", "chunk", "event")


@dataclass
class Fault:
    """Matching requests (method or "*", path regex, optional query regex), after the first
    `after` of them went through untouched, get `times` times (None = always): a `status`
    answer (with Retry-After when `retry_after`), or only a `delay` before being served
    normally, or a dropped connection (`drop`), or an answer cut midway (`cut`, one of
    CUTS): the request is carried out (a write is applied), then the connection closes
    inside the answer's headers, inside its body, or, for a watch, inside the chunk or the
    event line that carries event number `cut_after` (0: the first)."""
    method: str
    path: re.Pattern
    query: re.Pattern = None
    times: int = 1
    status: int = None
    retry_after: int = None
    delay: float = 0.0
    drop: bool = False
    message: str = ""
    after: int = 0
    cut: str = None
    cut_after: int = 0
    hits: int = 0
    passed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self, method, path, raw_query):
        if self.method not in ("*", method):
            return False
        if not self.path.search(path):
            return False
        if self.query is not None and not self.query.search(raw_query):
            return False
        with self._lock:
            if self.passed < self.after:
                self.passed += 1
                return False
            if self.times is not None and self.hits >= self.times:
                return False
            self.hits += 1
            return True

    @property
    def exhausted(self):
        return self.times is not None and self.hits >= self.times


REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
           405: "MethodNotAllowed", 406: "NotAcceptable", 409: "Conflict", 410: "Expired",
           422: "Invalid", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
           504: "Timeout"}


# --- HTTP -----------------------------------------------------------------------------

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, sim, addr):
        self.sim = sim
        self.conns = {}  # connection thread -> its socket (the TLS one once wrapped)
        self.conn_lock = threading.Lock()
        super().__init__(addr, _Handler)

    def process_request(self, request, client_address):
        t = threading.Thread(target=self.process_request_thread, args=(request, client_address),
                             name="k8s-sim-conn", daemon=True)
        with self.conn_lock:
            self.conns[t] = request
        t.start()

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.conn_lock:
                self.conns.pop(threading.current_thread(), None)

    def finish_request(self, request, client_address):
        # headers and body go out in separate writes: without TCP_NODELAY, Nagle plus the
        # client's delayed ACK would add ~40 ms to every answer
        try:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        ctx = self.sim._ssl_context
        if ctx is None:
            self.RequestHandlerClass(request, client_address, self)
            return
        try:
            request.settimeout(10)
            tls = ctx.wrap_socket(request, server_side=True)
            tls.settimeout(None)
        except (ssl.SSLError, OSError) as e:
            self.sim.tls_errors.append(repr(e))
            return
        with self.conn_lock:
            self.conns[threading.current_thread()] = tls
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, OSError)):
            return
        super().handle_error(request, client_address)


class _Dropped(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "k8s-sim"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet: the request log has everything
        pass

    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    # --- plumbing -----------------------------------------------------------------------

    @property
    def sim(self):
        return self.server.sim

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, code, body, ctype="application/json", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        if self._cut and self._cut.cut == "header":
            self._cut_now(b"HTTP/1.1 %d OK\r\nContent-Type: appl" % code)
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", self._audit_id)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        for w in getattr(self, "_ctx_obj", None) and self._ctx_obj.warnings or ():
            self.send_header("Warning", "299 - " + json.dumps(w))
        # logged before the answer goes out: a client that got its answer finds its request
        # in the log (the duration is filled in afterwards)
        self._rec.status = code
        if not self._rec.logged:
            self._rec.logged = True
            self.sim.request_log.append(self._rec)
        self.end_headers()
        if self._cut and body:  # "body", or a watch cut aimed at an answer that is none
            self._cut_now(body[:len(body) // 2])
        if self.command != "HEAD":
            self.wfile.write(body)

    def _cut_now(self, partial):
        """Sends `partial` and closes the connection: an answer cut midway (logged as no
        answer before the client can see the cut)."""
        self._rec.fault = f"cut {self._cut.cut}"
        self._rec.status = 0
        try:
            self.wfile.write(partial)
            self.wfile.flush()
        except OSError:
            pass
        self._drop()

    def _send_error(self, err):
        self._send(err.code, err.status(), headers=err.headers)

    def _alive(self):
        """False once the client hung up (checked while a watch is idle)."""
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            if not r:
                return True
            if not isinstance(self.connection, ssl.SSLSocket):
                return self.connection.recv(1, socket.MSG_PEEK) != b""
            # TLS: readable may be a non-data record (key update...). A watch client sends
            # no data while it reads the stream, so a non-blocking read tells: b"" = closed.
            self.connection.setblocking(False)
            try:
                return self.connection.recv(1) != b""
            except ssl.SSLWantReadError:
                return True
            finally:
                self.connection.setblocking(True)
        except (OSError, ValueError):
            return False

    def _drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise _Dropped()

    # --- dispatch -----------------------------------------------------------------------

    def _dispatch(self):
        sim = self.sim
        url = urllib.parse.urlsplit(self.path)
        qs = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        query = {k: v[0] for k, v in qs.items()}
        self._audit_id = os.urandom(8).hex()
        self._ctx_obj = None
        self._cut = None
        try:
            body = self._read_body()
        except (OSError, ValueError):
            self.close_connection = True
            return
        rec = RequestRecord(self.command, urllib.parse.unquote(url.path), query, url.query,
                            self.headers.get("Content-Type", ""), body,
                            accept=self.headers.get("Accept", ""),
                            user_agent=self.headers.get("User-Agent", ""),
                            time=time.monotonic(), wall=time.time())
        self._rec = rec
        try:
            fault = sim._match_fault(rec)
            if fault is not None:
                rec.fault = "delay" if fault.delay else ""
                if fault.delay and sim._stopped.wait(fault.delay):
                    self._drop()  # the server is stopping: don't hold up stop()
                if fault.drop:
                    rec.fault = "drop"
                    self._drop()
                if fault.cut:
                    self._cut = fault  # carried out, then cut (_send, _watch)
                if fault.status:
                    rec.fault = f"status {fault.status}"
                    headers = {}
                    details = {}
                    if fault.retry_after is not None:
                        headers["Retry-After"] = fault.retry_after
                        details = {"retryAfterSeconds": fault.retry_after}
                    raise ApiError(fault.status, REASONS.get(fault.status, "Unknown"),
                                   fault.message or f"injected fault: {fault.status}",
                                   details or None, headers)
            rec.user = self._authenticate(rec.path)
            if self._authorize(rec, query, body):
                self._route(rec, query, body)
        except _Dropped:
            rec.status = 0
        except ApiError as e:
            self._safe_error(e)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError) as e:
            self.close_connection = True
            rec.fault = rec.fault or f"client went away: {e!r}"
        except Exception as e:
            traceback.print_exc()
            sim.internal_errors.append(f"{rec}: {e!r}")
            self._safe_error(ApiError(500, "InternalError", f"k8s-sim internal error: {e!r}"))
        finally:
            rec.duration = time.monotonic() - rec.time
            if not rec.logged:
                sim.request_log.append(rec)

    def _authorize(self, rec, query, body):
        """RBAC (rbac.py) for ServiceAccount users; answers a SelfSubjectAccessReview
        itself. False when the request was answered here."""
        authz = self.sim.authorizer
        a = rbac.request_attributes(self.command, rec.path.rstrip("/") or "/", query)
        try:
            authz.check(rec.user, a)
        except ApiError:
            rec.denied = True
            raise
        if a.verb == "create" and (a.group, a.resource) == ("authorization.k8s.io",
                                                            "selfsubjectaccessreviews"):
            self._send(201, rbac.self_subject_access_review(authz, rec.user,
                                                            self._body_json(body)))
            return False
        return True

    def _safe_error(self, err):
        """Answer with an error Status, unless an answer already started (a watch stream
        that broke midway): then the only honest thing left is to close the connection."""
        if self._rec.status:
            self.close_connection = True
            return
        try:
            self._send_error(err)
        except (OSError, ssl.SSLError):
            self.close_connection = True

    def _authenticate(self, path):
        sim = self.sim
        auth = self.headers.get("Authorization", "")
        if auth:
            kind, _, cred = auth.partition(" ")
            user = sim.tokens.get(cred.strip()) if kind.lower() == "bearer" else None
            if user is None:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            return user
        if isinstance(self.connection, ssl.SSLSocket):
            cert = self.connection.getpeercert()
            if cert:
                cn = groups = None
                groups = []
                for rdn in cert.get("subject", ()):
                    for k, v in rdn:
                        if k == "commonName":
                            cn = v
                        elif k == "organizationName":
                            groups.append(v)
                if cn:
                    return cn
        if sim.anonymous or path in ("/healthz", "/livez", "/readyz") and sim.anonymous_health:
            return "system:anonymous"
        raise ApiError(401, "Unauthorized", "Unauthorized")

    def _route(self, rec, query, body):
        sim = self.sim
        path = rec.path.rstrip("/") or "/"
        method = self.command
        accept = self.headers.get("Accept", "")
        if path in ("/healthz", "/livez", "/readyz"):
            return self._send(200, "ok", "text/plain; charset=utf-8")
        if method not in ("GET", "HEAD") and not path.startswith(("/api/", "/apis/")):
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method "
                           "on the requested resource")
        if path == "/version":
            return self._send(200, K8S_VERSION)
        if path == "/api":
            if sim.aggregated_discovery and "as=APIGroupDiscoveryList" in accept:
                return self._aggregated(accept, core=True)
            return self._send(200, sim.registry.api_versions(sim.address))
        if path == "/apis":
            if sim.aggregated_discovery and "as=APIGroupDiscoveryList" in accept:
                return self._aggregated(accept, core=False)
            return self._send(200, sim.registry.api_group_list())
        if path == "/openapi/v3":
            if not sim.openapi:
                raise NO_RESOURCE
            return self._send(200, sim.registry.openapi_index())
        if path.startswith("/openapi/v3/"):
            doc = sim.registry.openapi_doc(path[len("/openapi/v3/"):]) if sim.openapi else None
            if doc is None:
                raise NO_RESOURCE
            return self._send(200, doc)
        if path.startswith("/openapi/"):
            raise NO_RESOURCE
        if not path.endswith("/log"):  # pods/log answers text/plain whatever is asked
            _check_accept(accept)
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        elif parts[0] == "apis" and len(parts) == 2:
            doc = sim.registry.api_group(parts[1])
            if doc is None:
                raise NO_RESOURCE
            return self._send(200, doc)
        else:
            raise NO_RESOURCE
        if not rest:
            doc = sim.registry.resource_list(group, version)
            if doc is None:
                raise NO_RESOURCE
            return self._send(200, doc)
        watch_path = False
        if rest[0] == "watch":
            watch_path, rest = True, rest[1:]
        ns = None
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status",
                                                                           "finalize"):
            ns, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise NO_RESOURCE
        rt = sim.registry.by_path(group, version, rest[0])
        if rt is None or (ns is not None and not rt.namespaced):
            raise NO_RESOURCE
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else ""
        if sub and sub not in rt.subresources:
            raise NO_RESOURCE
        if rt.namespaced and ns is None and name is not None:
            raise NO_RESOURCE
        self._resource(rt, ns, name, sub, query, body, accept,
                       watch_path or query.get("watch") in ("1", "true"))

    def _aggregated(self, accept, core):
        """Aggregated discovery in the version the client lists first (v2 or v2beta1)."""
        version = "v2"
        for media in accept.split(","):
            params = dict(p.strip().split("=", 1) for p in media.split(";")[1:] if "=" in p)
            if params.get("as") == "APIGroupDiscoveryList":
                version = params.get("v", "v2")
                break
        ctype = AGGREGATED_V2BETA1 if version == "v2beta1" else AGGREGATED_V2
        api_version = "apidiscovery.k8s.io/" + ("v2beta1" if version == "v2beta1" else "v2")
        return self._send(200, self.sim.registry.aggregated(core, api_version), ctype)

    def _ctx(self, query, rec):
        manager = query.get("fieldManager", "")
        from_agent = not manager
        if not manager:
            manager = (rec.user_agent.split("/")[0] or "unknown")[:128]
        dry = query.get("dryRun", "")
        if dry not in ("", "All"):
            raise bad_request(f"unsupported dryRun value {dry!r}")
        fv = query.get("fieldValidation", "")
        if fv not in FIELD_VALIDATION:
            raise bad_request(f'fieldValidation: Unsupported value: "{fv}": supported values: '
                              f'"Ignore", "Strict", "Warn"')
        self._ctx_obj = Ctx(user=rec.user, manager=manager, dry_run=dry == "All",
                   force=query.get("force") in ("true", "1"),
                   field_validation=query.get("fieldValidation", ""),
                   manager_from_agent=from_agent)
        return self._ctx_obj

    def _body_json(self, body):
        ctype = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        if ctype == protobuf.CONTENT_TYPE:
            try:
                return protobuf.decode(body)
            except protobuf.ProtobufError as e:
                raise ApiError(415, "UnsupportedMediaType", str(e))
        if ctype == "application/cbor":
            raise ApiError(415, "UnsupportedMediaType",
                           f"the body of the request was in an unknown format - accepted media "
                           f"types include: application/json, application/yaml, "
                           f"{protobuf.CONTENT_TYPE} (k8s-sim speaks no {ctype})")
        try:
            if ctype == "application/yaml":
                return yaml.safe_load(body.decode())
            return json.loads(body or b"null")
        except (ValueError, yaml.YAMLError) as e:
            raise bad_request(f"error decoding the request body: {e}")

    def _resource(self, rt, ns, name, sub, query, body, accept, watch):
        api, method = self.sim.api, self.command
        table = tables.wants_table(accept) and method == "GET" and not sub
        include = query.get("includeObject", "Metadata")
        if sub == "log":
            if method not in ("GET", "HEAD"):
                raise ApiError(405, "MethodNotAllowed",
                               "the server does not allow this method on the requested "
                               "resource")
            return self._send(200, self._pod_log(rt, ns, name, query), "text/plain")
        if method in ("GET", "HEAD"):
            if watch:
                return self._watch(rt, ns, name, query, table, include)
            if name is None:
                doc = api.list(rt, ns, query.get("labelSelector", ""),
                               query.get("fieldSelector", ""),
                               int(query.get("limit") or 0), query.get("continue", ""))
                if table:
                    items = [dict(o, apiVersion=rt.api_version, kind=rt.kind)
                             for o in doc["items"]]
                    doc = tables.table(rt, items, doc["metadata"]["resourceVersion"], include,
                                       doc["metadata"].get("continue"))
                return self._send(200, doc)
            if sub == "scale":
                return self._send(200, api.get_scale(rt, ns, name))
            obj = api.get(rt, ns, name)
            if table:
                obj = tables.table(rt, [obj], obj["metadata"]["resourceVersion"], include)
            return self._send(200, obj)
        ctx = self._ctx(query, self._rec)
        if method == "POST":
            if name is not None:
                raise ApiError(405, "MethodNotAllowed",
                               "the server does not allow this method on the requested "
                               "resource")
            if rt.namespaced and ns is None:
                raise NO_RESOURCE
            return self._send(201, api.create(rt, ns, self._body_json(body), ctx))
        if method == "PUT":
            if name is None:
                raise ApiError(405, "MethodNotAllowed",
                               "the server does not allow this method on the requested "
                               "resource")
            doc = self._body_json(body)
            if sub == "scale":
                return self._send(200, api.update_scale(rt, ns, name, doc, ctx))
            return self._send(200, api.update(rt, ns, name, doc, ctx, sub))
        if method == "PATCH":
            if name is None:
                raise ApiError(405, "MethodNotAllowed",
                               "the server does not allow this method on the requested "
                               "resource")
            code, obj = api.patch(rt, ns, name, body, self.headers.get("Content-Type", ""),
                                  ctx, sub)
            return self._send(code, obj)
        if method == "DELETE":
            if sub:
                raise ApiError(405, "MethodNotAllowed",
                               "the server does not allow this method on the requested "
                               "resource")
            options = self._body_json(body) if body else {}
            options = dict(options or {})
            for k in ("propagationPolicy", "gracePeriodSeconds", "orphanDependents"):
                if k in query:
                    v = query[k]
                    options[k] = int(v) if k == "gracePeriodSeconds" else \
                        (v == "true") if k == "orphanDependents" else v
            if name is None:
                return self._send(200, api.delete_collection(
                    rt, ns, query.get("labelSelector", ""), query.get("fieldSelector", ""),
                    ctx, options))
            return self._send(200, api.delete(rt, ns, name, ctx, options))
        raise ApiError(405, "MethodNotAllowed",
                       "the server does not allow this method on the requested resource")

    def _pod_log(self, rt, ns, name, query):
        """GET pods/{name}/log: what the container printed, as the job runner captured it
        (`kubelet_hook.container_log`); empty for a Pod nobody captured. Checked in a real
        server's order: the options (400 unparsable, 422 out of range), the Pod (404), the
        container (400 when missing and the Pod has several, or unknown). Honoured:
        `container`, `previous`, `tailLines`, `limitBytes`. Ignored: `timestamps`, `follow`
        (the answer is what was captured so far), `sinceSeconds`, `sinceTime`."""
        def number(key, least):
            v = query.get(key, "")
            if v == "":
                return None
            try:
                n = int(v)
            except ValueError:
                raise bad_request(f'{key}: invalid value "{v}": an integer is expected')
            if n < least:
                raise invalid(rt, name, key, f"Invalid value: {n}: must be greater than "
                              + ("or equal to 0" if least == 0 else "0"),
                              kind="PodLogOptions")
            return n
        tail, limit = number("tailLines", 0), number("limitBytes", 1)
        number("sinceSeconds", 1)
        previous = query.get("previous") in ("true", "1")
        pod = self.sim.api.get(rt, ns, name)
        spec = pod.get("spec") or {}
        names = [c.get("name") for key in ("initContainers", "containers",
                                           "ephemeralContainers")
                 for c in spec.get(key) or []]
        main = [c.get("name") for c in spec.get("containers") or []]
        container = query.get("container", "")
        if not container:
            if not main:
                raise bad_request(f"a container name must be specified for pod {name}")
            if len(main) > 1:
                raise bad_request(f"a container name must be specified for pod {name}, "
                                  f"choose one of: [{' '.join(names)}]")
            container = main[0]
        elif container not in names:
            raise bad_request(f"container {container} is not valid for pod {name}")
        fetch = getattr(self.sim.kubelet_hook, "container_log", None)
        data = fetch(ns or "default", name, pod["metadata"]["uid"], container,
                     previous=previous) if fetch else None
        if data is None:
            if previous:
                raise bad_request(f'previous terminated container "{container}" in pod '
                                  f'"{name}" not found')
            data = b""
        if tail is not None:
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[max(0, len(lines) - tail):]) if tail else b""
        if limit is not None:
            data = data[:limit]
        return data

    def _watch(self, rt, ns, name, query, table, include):
        sim = self.sim
        lsel, fsel = sim.api.selectors(rt, query.get("labelSelector", ""),
                                       query.get("fieldSelector", ""))
        if name is not None:  # legacy /watch/.../<name>
            from .selectors import FieldSelector
            fsel = FieldSelector(fsel.terms + [("metadata.name", "=", name)])
        try:
            w = Watch(sim, rt, ns if rt.namespaced else None, lsel, fsel, query, self._alive)
        except WatchError as e:
            raise bad_request(str(e))
        cut = self._cut.cut if self._cut else None
        if cut == "header":
            self._cut_now(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransf")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", self._audit_id)
        self.end_headers()
        self._rec.status = 200
        self.wfile.flush()
        # a watch is logged when it starts (tests wait for "the client is watching");
        # its duration is filled in when it ends
        self._rec.logged = True
        sim.request_log.append(self._rec)
        kubelet = sim.controllers.kubelet if rt.plural == "pods" and not rt.group else None
        if kubelet:
            kubelet.pod_watch(True)
        try:
            self._stream(w, rt, table, include, cut)
        finally:
            if kubelet:
                kubelet.pod_watch(False)

    def _stream(self, w, rt, table, include, cut):
        for n, ev in enumerate(w.events()):
            if table and ev["type"] in ("ADDED", "MODIFIED", "DELETED"):
                obj = ev["object"]
                ev = {"type": ev["type"],
                      "object": tables.table(rt, [obj], obj["metadata"]["resourceVersion"],
                                             include)}
            data = json.dumps(ev).encode() + b"\n"
            if cut in ("body", "event", "chunk") and n == self._cut.cut_after:
                half = data[:len(data) // 2]
                if cut == "chunk":  # the chunk announces the whole event; half of it comes
                    self._cut_now(b"%x\r\n%s" % (len(data), half))
                self._cut_now(b"%x\r\n%s\r\n" % (len(half), half))  # a whole chunk, half
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def _check_accept(accept):
    """406 when the client accepts none of the media types the simulator answers in (JSON;
    client-go's protobuf clients list application/json as a fallback, so they never get
    this)."""
    if not accept.strip():
        return
    for media in accept.split(","):
        mtype = media.split(";")[0].strip().lower()
        if mtype in ("application/json", "application/*", "*/*", "application/yaml",
                     "application/json-seq", ""):
            return
    raise ApiError(406, "NotAcceptable",
                   f"only the following media types are accepted: application/json, "
                   f"application/yaml (k8s-sim answers no {accept.split(',')[0].strip()})")


# --- the simulator --------------------------------------------------------------------

class K8sSim:
    """A simulated Kubernetes API server. Use as a context manager or start()/stop()."""

    def __init__(self, *, tls=True, host="127.0.0.1", port=0, tokens=None,
                 anonymous=False, client_cert_auth=True, pod_start_delay=0.2,
                 pod_stop_delay=0.2, pod_run_delay=0.1, install_eds_crd=True,
                 aggregated_discovery=True, openapi=True, hpa_controller=False, kubelet=True,
                 namespaces=("default",), authority=None, bookmark_interval=5.0,
                 default_watch_timeout=1800.0, pods_stop_once_watched=False):
        self.tls = tls
        self.host, self._port = host, port
        self.token = "sim-token-" + os.urandom(6).hex()
        self.tokens = dict(tokens) if tokens is not None else {self.token: "sim-admin"}
        self.anonymous = anonymous
        self.anonymous_health = True
        self.client_cert_auth = client_cert_auth
        self.pod_start_delay = pod_start_delay
        self.pod_stop_delay = pod_stop_delay
        self.pod_run_delay = pod_run_delay  # how long a Job's Pod runs before it exits
        self.pods_stop_once_watched = pods_stop_once_watched  # see controller.Kubelet
        self.aggregated_discovery = aggregated_discovery
        self.openapi = openapi
        self.hpa_controller = hpa_controller
        self.kubelet_enabled = kubelet
        self.kubelet_hook = None
        self.bookmark_interval = bookmark_interval
        self.default_watch_timeout = default_watch_timeout
        self.request_log = RequestLog()
        self.internal_errors = []
        self.tls_errors = []
        self._faults = []
        self._fault_lock = threading.Lock()
        self.authority = authority or (shared_authority() if tls else None)
        self.store = Store()
        self.registry = Registry()
        self.api = Api(self.store, self.registry, self)
        self.authorizer = rbac.Authorizer(self.store)  # ServiceAccount tokens only
        self.controllers = ControllerManager(self)
        self._ssl_context = None
        self._stopped = threading.Event()
        self._server = None
        self._thread = None
        for ns in namespaces:
            self.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        if install_eds_crd:
            self.install_crd(EDS_CRD if EDS_CRD.exists() else FALLBACK_EDS_CRD)

    # --- lifecycle ----------------------------------------------------------------------

    def start(self):
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.authority.server_crt, self.authority.server_key)
            if self.client_cert_auth:
                ctx.load_verify_locations(self.authority.ca_crt)
                ctx.verify_mode = ssl.CERT_OPTIONAL
            ctx.set_alpn_protocols(["http/1.1"])
            self._ssl_context = ctx
        self._server = _Server(self, (self.host, self._port))
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="k8s-sim-accept", daemon=True)
        self._thread.start()
        self.controllers.start()
        return self

    def stop(self):
        if self._server is None:
            return
        self._stopped.set()
        # a kubelet hook that runs processes (jobrunner.JobRunner) kills them here
        close_hook = getattr(self.kubelet_hook, "close", None)
        if close_hook is not None:
            close_hook()
        with self.store.lock:
            self.store.stopping = True
            self.store.cond.notify_all()
        self._server.shutdown()
        self._server.server_close()
        with self._server.conn_lock:
            conns = list(self._server.conns.items())
        for _, sock in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t, _ in conns:
            t.join(timeout=2)
        self._thread.join(timeout=2)
        self.controllers.join(timeout=2)
        self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    @property
    def url(self):
        return f"{'https' if self.tls else 'http'}://{self.address}"

    @property
    def ca_path(self):
        return str(self.authority.ca_crt) if self.authority else None

    @property
    def controller_errors(self):
        return list(self.controllers.errors)

    # --- faults -------------------------------------------------------------------------

    def fault(self, method="*", path=".*", *, status=None, times=1, retry_after=None,
              delay=0.0, drop=False, query=None, message="", after=0, cut=None, cut_after=0):
        """Inject a fault; returns it (`.hits` counts the requests it answered).
        Examples: fault("PATCH", r"/scale$", status=500, times=2);
        fault("GET", "/pods", query="watch=", drop=True);
        fault("*", ".*", status=429, retry_after=1); fault("GET", ".*", delay=2);
        fault("PATCH", "/deployments/api$", status=403, times=None, after=1): the second
        and later PATCHes of api; fault("GET", "/pods", query="watch=", cut="event"): a
        watch whose first event line is cut in two."""
        if cut not in (None,) + CUTS:
            raise ValueError(f"cut must be one of {CUTS}")
        f = Fault(method.upper(), re.compile(path), re.compile(query) if query else None,
                  times, status, retry_after, delay, drop, message, after, cut, cut_after)
        with self._fault_lock:
            self._faults.append(f)
        return f

    def admission_deny(self, method, path, *, policy="chartreuse-test-policy",
                       reason="denied by the test", **kw):
        """A write refused as a ValidatingAdmissionPolicy refuses it: 422 Invalid, nothing
        applied (the same answer as a JSON patch whose test fails: SPEC §6)."""
        return self.fault(method, path, status=422, message=(
            f"{method.lower()} request denied: ValidatingAdmissionPolicy '{policy}' with "
            f"binding '{policy}-binding' denied request: {reason}"), **kw)

    def clear_faults(self):
        with self._fault_lock:
            self._faults.clear()

    def _match_fault(self, rec):
        with self._fault_lock:
            faults = list(self._faults)
        for f in faults:
            if f.take(rec.method, rec.path, rec.raw_query):
                return f
        return None

    # --- direct store access ------------------------------------------------------------

    def resource(self, kind):
        """The ResourceType for a kind, plural, short name or `group/version/resource`."""
        return self.registry.resolve(kind)

    def put(self, obj):
        """Create or replace an object (status kept as given). Returns the stored copy."""
        if isinstance(obj, str):
            obj = yaml.safe_load(obj)
        rt = self.registry.by_kind(obj["apiVersion"], obj["kind"])
        if rt is None:
            raise KeyError(f"no resource for {obj['apiVersion']} {obj['kind']}")
        return self.api.put(rt, obj)

    def put_all(self, text_or_docs):
        """Every document of a multi-document YAML string (or a list of dicts)."""
        docs = yaml.safe_load_all(text_or_docs) if isinstance(text_or_docs, str) \
            else text_or_docs
        return [self.put(d) for d in docs if d]

    def install_crd(self, crd):
        if isinstance(crd, (str, Path)) and Path(crd).exists():
            crd = yaml.safe_load(Path(crd).read_text())
        return self.put(crd)

    def get(self, kind, name, namespace="default"):
        """A copy of the object, or None."""
        rt = self.resource(kind)
        obj = self.store.get(rt.group, rt.plural, namespace if rt.namespaced else "", name)
        return copy.deepcopy(obj) if obj is not None else None

    def objects(self, kind, namespace=None, selector=""):
        """Copies of the objects of a kind (all namespaces by default), label-filtered."""
        rt = self.resource(kind)
        from .selectors import LabelSelector
        sel = LabelSelector.parse(selector)
        return [copy.deepcopy(o) for o in self.store.list(rt.group, rt.plural,
                                                          namespace if rt.namespaced else None)
                if sel.matches(o["metadata"].get("labels"))]

    def history(self, kind, name=None, namespace="default"):
        """[(event type, object copy)] of every change to objects of a kind (one name), oldest
        first, as far back as the change history goes: what a Job went through before Helm
        deleted it, for instance."""
        rt = self.resource(kind)
        ns = namespace if rt.namespaced else ""
        with self.store.lock:
            try:
                events = self.store.events_since(self.store.compacted_rv)
            except LookupError:
                events = []
        return [(ev.type, copy.deepcopy(ev.obj)) for ev in events
                if (ev.group, ev.plural) == (rt.group, rt.plural)
                and (namespace is None or ev.namespace == ns)
                and (name is None or ev.name == name)]

    def delete(self, kind, name, namespace="default", **options):
        rt = self.resource(kind)
        return self.api.delete(rt, namespace, name, Ctx(manager="k8s-sim-test"), options)

    def patch(self, kind, name, patch, namespace="default", status=False):
        """JSON-merge-patch an object (the status too when status=True)."""
        rt = self.resource(kind)
        ctx = Ctx(manager="k8s-sim-test", raw_status=True)
        return self.api.patch(rt, namespace, name, json.dumps(patch).encode(),
                              "application/merge-patch+json", ctx,
                              "status" if status and rt.has_status else "")[1]

    def scale(self, kind, name, replicas, namespace="default", manager="k8s-sim-test"):
        """Set replicas through the scale subresource, as field manager `manager`."""
        rt = self.resource(kind)
        return self.api._set_replicas(rt, namespace, name, replicas, None,
                                      Ctx(manager=manager))

    def pods_of(self, deployment, namespace="default", include_terminating=True):
        """Pods selected by a Deployment's selector (Failed ones included)."""
        d = self.get("deployments", deployment, namespace)
        if d is None:
            return []
        from .selectors import LabelSelector
        sel = LabelSelector.from_spec(d["spec"].get("selector"))
        return [p for p in self.objects("pods", namespace)
                if sel.matches(p["metadata"].get("labels"))
                and (include_terminating or not p["metadata"].get("deletionTimestamp"))]

    def set_pod_phase(self, name, phase, namespace="default", reason=None):
        """Make a Pod Failed (or Succeeded...) as a crashed/evicted container would."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        code = 0 if phase == "Succeeded" else 1

        def change(o):
            st = o.setdefault("status", {})
            st["phase"] = phase
            if reason:
                st["reason"] = reason
            st["conditions"] = [dict(c, status="False") if c.get("type") in
                                ("Ready", "ContainersReady") else c
                                for c in st.get("conditions") or []]
            st["containerStatuses"] = [
                dict(c, ready=False, started=False,
                     state={"terminated": {"exitCode": code,
                                           "reason": "Completed" if code == 0 else "Error",
                                           "finishedAt": now}})
                for c in st.get("containerStatuses") or []]
        return self.controllers.mutate(self.resource("pods"), namespace, name, change)

    def wait_for(self, predicate, timeout=5.0, interval=0.01, what="condition"):
        """Poll `predicate()` until true; raise TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            v = predicate()
            if v:
                return v
            if time.monotonic() > deadline:
                raise TimeoutError(f"k8s-sim: {what} not reached in {timeout}s")
            time.sleep(interval)

    def settle(self, timeout=5.0):
        """Wait until the controllers have processed every change made so far."""
        self.wait_for(self.controllers.idle, timeout, what="controllers idle")

    def compact(self):
        """Forget the change history: watches from an older resourceVersion get 410."""
        self.store.compact(0)

    # --- credentials --------------------------------------------------------------------

    def client_cert(self, cn="sim-admin", groups=("system:masters",)):
        return self.authority.client_cert(cn, groups)

    def add_token(self, token, user="sim-user"):
        self.tokens[token] = user

    def revoke_token(self, token):
        self.tokens.pop(token, None)

    def kubeconfig(self, path, user="token", *, token=None, namespace="default",
                   ca="data", context="k8s-sim", server=None, cn="sim-admin",
                   groups=("system:masters",)):
        """Write a kubeconfig to `path` and return its path.

        user: "token" (inline bearer token), "token-file" (tokenFile next to it),
              "cert" (client certificate and key inline), "cert-file" (as files),
              "exec" (an exec credential plugin printing the token; the token is read
              from `<path>.token` at each call, so a test can rotate it), "none".
        ca: "data" (certificate-authority-data), "file" (certificate-authority),
            "insecure" (insecure-skip-tls-verify), "none".
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        token = token or self.token
        cluster = {"server": server or self.url}
        if self.tls:
            if ca == "data":
                cluster["certificate-authority-data"] = base64.b64encode(
                    self.authority.ca_crt.read_bytes()).decode()
            elif ca == "file":
                cluster["certificate-authority"] = str(self.authority.ca_crt)
            elif ca == "insecure":
                cluster["insecure-skip-tls-verify"] = True
        u = {}
        if user == "token":
            u["token"] = token
        elif user == "token-file":
            tf = path.with_name(path.name + ".token")
            tf.write_text(token)
            u["tokenFile"] = str(tf)
        elif user in ("cert", "cert-file"):
            crt, key = self.client_cert(cn, groups)
            if user == "cert":
                u["client-certificate-data"] = base64.b64encode(crt.read_bytes()).decode()
                u["client-key-data"] = base64.b64encode(key.read_bytes()).decode()
            else:
                u["client-certificate"], u["client-key"] = str(crt), str(key)
        elif user == "exec":
            tf = path.with_name(path.name + ".token")
            tf.write_text(token)
            script = path.with_name(path.name + ".exec-credential.py")
            script.write_text(
                "#!/usr/bin/python3\n"
                "# Exec credential plugin written by k8s_sim: prints the token in the file\n"
                "# next to it; counts its calls in <kubeconfig>.exec-count.\n"
                "import json, pathlib\n"
                f"tok = pathlib.Path({str(tf)!r}).read_text().strip()\n"
                f"cnt = pathlib.Path({str(path) + '.exec-count'!r})\n"
                "n = int(cnt.read_text()) if cnt.exists() else 0\n"
                "cnt.write_text(str(n + 1))\n"
                "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1',\n"
                "                  'kind': 'ExecCredential', 'status': {'token': tok}}))\n")
            script.chmod(0o755)
            u["exec"] = {"apiVersion": "client.authentication.k8s.io/v1",
                         "command": str(script), "args": [], "interactiveMode": "Never",
                         "provideClusterInfo": False}
        elif user != "none":
            raise ValueError(f"unknown kubeconfig user variant {user!r}")
        cfg = {"apiVersion": "v1", "kind": "Config", "preferences": {},
               "clusters": [{"name": context, "cluster": cluster}],
               "users": [{"name": f"{context}-user", "user": u}],
               "contexts": [{"name": context, "context": {
                   "cluster": context, "user": f"{context}-user", "namespace": namespace}}],
               "current-context": context}
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        path.chmod(0o600)
        return path
