"""The Kubernetes client (src/k8s.c) against a small HTTPS stub: authentication (token,
client certificate, exec plugin, rotated service-account token), TLS (CA file or data,
insecure), retries, the 409 helper, error lines and watch streams.

The C side is the `k8s_cli` unit test (tests/unit/test_k8s.c), which runs the operations in
CR_K8S_TEST_OPS (one per line) and prints one result line for each."""
import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from conftest import REPO, SLOWDOWN, UNIT, WRAPPER

VERSION = (REPO / "VERSION").read_text().strip()
# enum cr_k8s_rc (src/k8s.h): what k8s_cli prints as a call's result
OK, ERROR, NOT_FOUND, CONFLICT, TEST_FAILED, INVALID, FORBIDDEN, TRANSIENT = \
    0, -1, -2, -3, -4, -5, -6, -7
PODS = "/api/v1/namespaces/default/pods"
CM = "/api/v1/namespaces/default/configmaps/cm"


# --- certificates -----------------------------------------------------------------------

def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_cert(d, name, ca, subject, ext=None):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=d)
    extra = []
    if ext:
        (d / f"{name}.ext").write_text(ext)
        extra = ["-extfile", f"{name}.ext"]
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", *extra, cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    for ca in ("ca", "other"):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.crt", "-days", "2",
                "-subj", f"/CN={ca}-test-ca", cwd=d)
    make_cert(d, "server", "ca", "/CN=localhost",
              "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    make_cert(d, "client", "ca", "/O=system:masters/CN=chartreuse-test")
    return d


# --- the stub API server ----------------------------------------------------------------

def status_body(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def reply(code, obj=None, headers=None):
    def act(h, rec):
        h.send_json(code, obj, headers)
        return True
    return act


def drop():
    """Closes the connection without answering."""
    def act(h, rec):
        h.close_connection = True
        return True
    return act


def cut_headers():
    """Closes the connection inside the answer's headers (a proxy cut: libcurl alone would
    take what came for a complete answer without a body)."""
    def act(h, rec):
        h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: appl")
        h.wfile.flush()
        h.connection.shutdown(socket.SHUT_RDWR)
        h.close_connection = True
        return True
    return act


def call(fn):
    """Runs fn(rec), then the request is answered as usual."""
    def act(h, rec):
        fn(rec)
        return False
    return act


def slow(seconds):
    def act(h, rec):
        time.sleep(seconds)
        return False
    return act


def stream(chunks, delay=0.05, hold=0.0, cut=None):
    """A chunked watch answer: the chunks as written (events may be cut anywhere). cut:
    the connection then closes without the last chunk: "event" after the chunks as they
    are (the last may end inside an event), "chunk" inside a further chunk announced
    whole, of which half comes."""
    def act(h, rec):
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        try:
            for c in chunks:
                data = c.encode()
                h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                h.wfile.flush()
                time.sleep(delay)
            time.sleep(hold)
            if cut == "chunk":
                h.wfile.write(b"40\r\n" + b'{"type": "ADDED", "obj')
            if not cut:
                h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()
            if cut:
                h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        h.close_connection = True
        return True
    return act


def event(kind, obj):
    return json.dumps({"type": kind, "object": obj})


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, code, obj=None, headers=None):
        body = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def dispatch(self):
        stub = self.server.stub
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        cert = self.connection.getpeercert()
        cn = None
        for rdn in (cert or {}).get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    cn = v
        url = urlsplit(self.path)
        rec = {"method": self.command, "path": url.path, "raw_path": self.path,
               "query": parse_qs(url.query), "headers": dict(self.headers), "body": raw,
               "t": time.monotonic(), "port": self.client_address[1], "cn": cn,
               "auth": self.headers.get("Authorization")}
        with stub.lock:
            stub.requests.append(rec)
        if stub.tokens is not None and rec["auth"] not in {f"Bearer {t}" for t in stub.tokens}:
            return self.send_json(401, status_body(401, "Unauthorized", "Unauthorized"))
        action = stub.next_action(self.command, url.path)
        if action and action(self, rec):
            return
        stored = stub.store.get(url.path)
        if stored is not None and self.command in ("GET", "PUT"):
            return self.answer_store(url.path, stored, raw)
        body = json.loads(raw) if raw else None
        self.send_json(200, {"kind": "Echo", "method": self.command, "path": url.path,
                             "query": rec["query"], "body": body,
                             "contentType": self.headers.get("Content-Type")})

    def answer_store(self, path, stored, raw):
        """GET and PUT with resourceVersion checks, as the API server does."""
        stub = self.server.stub
        if self.command == "GET":
            return self.send_json(200, stored)
        obj = json.loads(raw)
        if obj["metadata"].get("resourceVersion") != stored["metadata"]["resourceVersion"]:
            return self.send_json(409, status_body(
                409, "Conflict", "Operation cannot be fulfilled on configmaps \"cm\": the "
                "object has been modified; please apply your changes to the latest version"))
        obj["metadata"]["resourceVersion"] = str(int(stored["metadata"]["resourceVersion"]) + 1)
        stub.store[path] = obj
        self.send_json(200, obj)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = dispatch


class Stub:
    def __init__(self, pki):
        self.requests = []
        self.script = {}
        self.store = {}
        self.tokens = None
        self.lock = threading.Lock()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki / "server.crt", pki / "server.key")
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(pki / "ca.crt")
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.stub = self
        self.port = self.httpd.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def on(self, method, path, *actions):
        self.script.setdefault((method, path), []).extend(actions)

    def next_action(self, method, path):
        with self.lock:
            queue = self.script.get((method, path))
            return queue.pop(0) if queue else None

    def seen(self, path=None, method=None):
        return [r for r in self.requests
                if (path is None or r["path"] == path) and (method is None or r["method"] == method)]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def stub(pki):
    s = Stub(pki)
    yield s
    s.close()


# --- running the client -----------------------------------------------------------------

class Cli:
    def __init__(self, proc, elapsed):
        self.proc = proc
        self.elapsed = elapsed
        self.lines = proc.stdout.split("\n")  # not splitlines(): U+2028 is no line end here
        self.err = proc.stderr
        self.err_lines = [l for l in proc.stderr.split("\n") if l.strip()]

    def results(self, label=None):
        """(label, rc, object) for each request line."""
        out = []
        for line in self.lines:
            head, _, rest = line.partition(" ")
            if "=" not in head or head.startswith(("server=", "namespace=", "origin=")):
                continue
            name, _, rc = head.partition("=")
            if name in ("client", "ok", "dup", "watch") or (label and name != label):
                continue
            out.append((name, int(rc), None if rest in ("", "-") else json.loads(rest)))
        return out

    def events(self):
        return [(l.split(" ", 2)[1], json.loads(l.split(" ", 2)[2]))
                for l in self.lines if l.startswith("event ")]

    def value(self, key):
        for line in self.lines:
            if line.startswith(key + "="):
                return line[len(key) + 1:]
        return None

    def errors(self):
        return [l for l in self.err_lines if ": error: " in l]


CLEAN_ENV = ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT",
             "CHARTREUSE_SERVICEACCOUNT_DIR", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY",
             "http_proxy", "ALL_PROXY", "all_proxy")


def run_cli(ops, env=None, timeout=120, client_ok=True, prefix=()):
    full = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    full.update(env or {})
    if ops is not None:
        full["CR_K8S_TEST_OPS"] = "\n".join(ops)
    t0 = time.monotonic()
    proc = subprocess.run([*prefix, *WRAPPER, UNIT, "k8s_cli"], env=full, capture_output=True,
                          text=True, timeout=timeout, cwd="/")
    cli = Cli(proc, time.monotonic() - t0)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert cli.value("client") in ((None, "0") if client_ok else ("-1",)), proc.stderr
    return cli


def write_kubeconfig(tmp_path, stub, pki, user, cluster=None, namespace=None, name="config"):
    """A kubeconfig in tmp_path/kube whose relative paths point into tmp_path/kube/pki."""
    kube = tmp_path / "kube"
    (kube / "pki").mkdir(parents=True, exist_ok=True)
    for f in ("ca.crt", "other.crt", "client.crt", "client.key"):
        shutil.copy(pki / f, kube / "pki" / f)
    cl = {"server": stub.url + "/", "certificate-authority": "pki/ca.crt"}
    cl.update(cluster or {})
    cl = {k: v for k, v in cl.items() if v is not None}
    ctx = {"cluster": "test", "user": "me"}
    if namespace:
        ctx["namespace"] = namespace
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "test",
           "clusters": [{"name": "test", "cluster": cl}],
           "users": [{"name": "me", "user": user}],
           "contexts": [{"name": "test", "context": ctx}]}
    path = kube / name
    path.write_text(yaml.safe_dump(doc))
    return path


def token_env(tmp_path, stub, pki, token="t0ken-abc", **kw):
    return {"KUBECONFIG": str(write_kubeconfig(tmp_path, stub, pki, {"token": token}, **kw))}


# --- authentication and TLS -------------------------------------------------------------

def test_token_auth_ca_file_relative_keepalive_and_headers(tmp_path, stub, pki):
    env = token_env(tmp_path, stub, pki, namespace="team-a")
    cli = run_cli(["info", f"get {PODS}", f"get {PODS}"], env)
    assert cli.value("namespace") == "team-a"
    assert cli.value("server") == stub.url
    assert cli.value("origin") == f"{env['KUBECONFIG']}, context test"
    assert [r[:2] for r in cli.results()] == [("get", 0), ("get", 0)]
    reqs = stub.seen(PODS)
    assert [r["auth"] for r in reqs] == ["Bearer t0ken-abc"] * 2
    assert reqs[0]["headers"]["User-Agent"] == f"chartreuse/{VERSION}"
    assert reqs[0]["headers"]["Accept"] == "application/json"
    assert reqs[0]["port"] == reqs[1]["port"], "the connection is kept alive"
    assert not cli.errors()


def test_ca_data_instead_of_file(tmp_path, stub, pki):
    ca = base64.b64encode((pki / "ca.crt").read_bytes()).decode()
    env = token_env(tmp_path, stub, pki, cluster={
        "certificate-authority": "pki/other.crt",  # -data wins, as with kubectl
        "certificate-authority-data": ca})
    assert run_cli([f"get {PODS}"], env).results() == [("get", 0, stub_echo(PODS))]


def stub_echo(path, method="GET", query=None, body=None, ctype=None):
    return {"kind": "Echo", "method": method, "path": path, "query": query or {},
            "body": body, "contentType": ctype}


def test_wrong_ca_fails_once_with_one_line(tmp_path, stub, pki):
    env = token_env(tmp_path, stub, pki, cluster={"certificate-authority": "pki/other.crt"})
    cli = run_cli([f"get {PODS}"], env)
    assert cli.results() == [("get", -1, None)]
    assert len(cli.errors()) == 1
    assert f"kubernetes: GET {PODS}: {stub.url}: SSL certificate problem" in cli.errors()[0]
    assert "retrying" not in cli.err
    assert not stub.requests


@pytest.fixture
def system_store_trusting_the_stub(tmp_path, pki):
    """A prefix that runs a command with a system CA store (/etc/ssl/certs, bind-mounted in
    a private mount namespace, and OpenSSL's SSL_CERT_FILE/SSL_CERT_DIR) that trusts the CA
    of the stub's certificate, as a corporate TLS-inspection CA is trusted by an image."""
    store = tmp_path / "system-store"
    store.mkdir()
    shutil.copy(pki / "ca.crt", store / "inspection-ca.crt")
    shutil.copy(pki / "ca.crt", store / "ca-certificates.crt")
    subprocess.run(["openssl", "rehash", str(store)], check=True, capture_output=True)
    env = {"SSL_CERT_FILE": str(store / "ca-certificates.crt"), "SSL_CERT_DIR": str(store)}
    prefix = ["unshare", "-m", "--propagation", "private", "sh", "-c",
              'mount --bind "$0" /etc/ssl/certs && exec "$@"', str(store)]
    return prefix, env


def test_the_system_store_is_trusted_when_no_ca_is_named(tmp_path, stub, pki,
                                                         system_store_trusting_the_stub):
    """The control for the pinning tests below: the prefix does put the stub's CA in the
    system store."""
    prefix, store_env = system_store_trusting_the_stub
    env = token_env(tmp_path, stub, pki, cluster={"certificate-authority": None})
    cli = run_cli([f"get {PODS}"], {**env, **store_env}, prefix=prefix)
    assert cli.results()[0][1] == 0, cli.err


@pytest.mark.parametrize("named", ["file", "data", "in-cluster"])
def test_a_named_ca_is_the_only_trust_anchor(tmp_path, stub, pki, named,
                                             system_store_trusting_the_stub):
    """A CA the kubeconfig (or the in-cluster ca.crt) names pins the server: a certificate
    from a CA that only the system store trusts is refused, as kubectl refuses it, and the
    token is never sent."""
    prefix, store_env = system_store_trusting_the_stub
    if named == "in-cluster":
        env, sa = in_cluster_env(tmp_path, stub, pki)
        shutil.copy(pki / "other.crt", sa / "ca.crt")
    elif named == "file":
        env = token_env(tmp_path, stub, pki, cluster={"certificate-authority": "pki/other.crt"})
    else:
        other = base64.b64encode((pki / "other.crt").read_bytes()).decode()
        env = token_env(tmp_path, stub, pki, cluster={"certificate-authority": None,
                                                     "certificate-authority-data": other})
    cli = run_cli([f"get {PODS}"], {**env, **store_env}, prefix=prefix)
    assert cli.results() == [("get", -1, None)]
    assert "SSL certificate problem" in cli.errors()[0]
    assert not stub.requests


@pytest.mark.parametrize("ca", ["certificate-authority", "certificate-authority-data"])
def test_insecure_with_a_named_ca_is_refused_as_kubectl_refuses_it(tmp_path, stub, pki, ca):
    value = "pki/ca.crt" if ca == "certificate-authority" else \
        base64.b64encode((pki / "ca.crt").read_bytes()).decode()
    env = token_env(tmp_path, stub, pki, cluster={"certificate-authority": None, ca: value,
                                                 "insecure-skip-tls-verify": True})
    kubectl = subprocess.run([str(REPO / ".cache" / "helm" / "v4" / "kubectl"), "get", "pods"],
                             env={**os.environ, **env}, capture_output=True, text=True)
    assert "specifying a root certificates file with the insecure flag is not allowed" in \
        kubectl.stderr
    cli = run_cli([f"get {PODS}"], env, client_ok=False)
    assert cli.errors() == [
        f"chartreuse: error: kubernetes: {env['KUBECONFIG']}, context test: specifying a root "
        "certificates file with the insecure flag is not allowed (remove "
        "insecure-skip-tls-verify or the certificate authority)"]
    assert not stub.requests


def test_insecure_skip_tls_verify(tmp_path, stub, pki):
    env = token_env(tmp_path, stub, pki, cluster={"certificate-authority": None,
                                                 "insecure-skip-tls-verify": True})
    assert run_cli([f"get {PODS}"], env).results()[0][1] == 0
    env = token_env(tmp_path, stub, pki, cluster={"certificate-authority": None})
    cli = run_cli([f"get {PODS}"], env)  # the system CAs do not know the stub's
    assert cli.results() == [("get", -1, None)] and "certificate" in cli.errors()[0]


@pytest.mark.parametrize("inline", [False, True], ids=["files", "data"])
def test_client_certificate(tmp_path, stub, pki, inline):
    if inline:
        user = {"client-certificate-data": base64.b64encode((pki / "client.crt").read_bytes()).decode(),
                "client-key-data": base64.b64encode((pki / "client.key").read_bytes()).decode()}
    else:
        user = {"client-certificate": "pki/client.crt", "client-key": "pki/client.key"}
    env = {"KUBECONFIG": str(write_kubeconfig(tmp_path, stub, pki, user))}
    cli = run_cli([f"get {PODS}"], env)
    assert cli.results()[0][1] == 0, cli.err
    assert stub.requests[0]["cn"] == "chartreuse-test"
    assert stub.requests[0]["auth"] is None


def test_kubeconfig_list_merged_and_context_flag(tmp_path, stub, pki):
    a = write_kubeconfig(tmp_path, stub, pki, {"token": "from-a"}, name="a")
    b = tmp_path / "b"
    b.write_text(yaml.safe_dump({
        "current-context": "other",
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "me"}},
                     {"name": "other", "context": {"cluster": "test", "user": "me",
                                                   "namespace": "ns-b"}}],
        "users": [{"name": "me", "user": {"token": "from-b"}}]}))
    env = {"KUBECONFIG": f"{b}:{tmp_path}/missing:{a}"}
    cli = run_cli(["info", f"get {PODS}"], env)
    assert cli.value("namespace") == "ns-b"
    assert stub.requests[0]["auth"] == "Bearer from-b"  # b comes first; the cluster is a's
    env["CR_K8S_TEST_CONTEXT"] = "test"
    env["CR_K8S_TEST_NAMESPACE"] = "flag"
    cli = run_cli(["info"], env)
    assert cli.value("namespace") == "flag"
    assert cli.value("origin") == f"{b}, context test"
    env["CR_K8S_TEST_CONTEXT"] = "nope"
    cli = run_cli(["info"], env, client_ok=False)
    assert cli.errors() == [f'chartreuse: error: kubernetes: context "nope" is not defined in '
                            f'{env["KUBECONFIG"]}']


# --- exec credential plugins ------------------------------------------------------------

PLUGIN = """#!/usr/bin/python3
import json, os, sys, time
from pathlib import Path
d = Path(__file__).parent
n = int((d / "count").read_text()) + 1 if (d / "count").exists() else 1
(d / "count").write_text(str(n))
(d / f"call{n}.json").write_text(json.dumps({
    "argv": sys.argv[1:], "mode": os.environ.get("PLUGIN_MODE"),
    "info": json.loads(os.environ.get("KUBERNETES_EXEC_INFO") or "null")}))
cfg = json.loads((d / "plugin.json").read_text())
st = {}
if cfg.get("token"):
    st["token"] = f"{cfg['token']}-{n}"
if cfg.get("cert"):
    st["clientCertificateData"] = (d / "client.crt").read_text()
    st["clientKeyData"] = (d / "client.key").read_text()
if cfg.get("ttl") is not None:
    st["expirationTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                              time.gmtime(time.time() + cfg["ttl"]))
print(json.dumps({"apiVersion": cfg["api"], "kind": "ExecCredential", "status": st}))
"""


def exec_env(tmp_path, stub, pki, api="client.authentication.k8s.io/v1", **cfg):
    plugin = tmp_path / "kube" / "bin"
    plugin.mkdir(parents=True)
    (plugin / "plugin").write_text(PLUGIN)
    (plugin / "plugin").chmod(0o755)
    (plugin / "plugin.json").write_text(json.dumps(dict(cfg, api=api)))
    shutil.copy(pki / "client.crt", plugin)
    shutil.copy(pki / "client.key", plugin)
    user = {"exec": {"apiVersion": api, "command": "bin/plugin",
                     "args": ["get-token", "--cluster", "a b"],
                     "env": [{"name": "PLUGIN_MODE", "value": "test"}],
                     "provideClusterInfo": True, "interactiveMode": "Never"}}
    env = {"KUBECONFIG": str(write_kubeconfig(tmp_path, stub, pki, user))}
    return env, plugin


def calls(plugin):
    n = int((plugin / "count").read_text()) if (plugin / "count").exists() else 0
    return [json.loads((plugin / f"call{i}.json").read_text()) for i in range(1, n + 1)]


@pytest.mark.parametrize("api", ["client.authentication.k8s.io/v1",
                                 "client.authentication.k8s.io/v1beta1"])
@pytest.mark.timing  # a 3 s lifetime: two calls under valgrind can outlast it
def test_exec_plugin_token_cached_until_expiry(tmp_path, stub, pki, api):
    env, plugin = exec_env(tmp_path, stub, pki, api=api, token="exec", ttl=3)
    cli = run_cli([f"get {PODS}", f"get {PODS}", "sleep 3500", f"get {PODS}"], env)
    assert [r[1] for r in cli.results()] == [0, 0, 0], cli.err
    assert [r["auth"] for r in stub.requests] == ["Bearer exec-1", "Bearer exec-1",
                                                  "Bearer exec-2"]
    c = calls(plugin)
    assert len(c) == 2
    assert c[0]["argv"] == ["get-token", "--cluster", "a b"] and c[0]["mode"] == "test"
    info = c[0]["info"]
    assert info["apiVersion"] == api and info["kind"] == "ExecCredential"
    assert info["spec"]["interactive"] is False
    assert info["spec"]["cluster"]["server"] == stub.url
    assert base64.b64decode(info["spec"]["cluster"]["certificate-authority-data"]) == \
        (pki / "ca.crt").read_bytes()


def test_exec_plugin_without_expiry_runs_once_and_dup_shares_it(tmp_path, stub, pki):
    env, plugin = exec_env(tmp_path, stub, pki, token="exec")
    cli = run_cli([f"get {PODS}", "dup", f"get {PODS}", f"get {PODS}"], env)
    assert [r[1] for r in cli.results()] == [0, 0, 0]
    assert cli.value("dup") == "0"
    assert len(calls(plugin)) == 1


def test_exec_plugin_rerun_on_401(tmp_path, stub, pki):
    env, plugin = exec_env(tmp_path, stub, pki, token="tok")
    stub.tokens = {"tok-2"}  # the first credential was revoked early
    cli = run_cli([f"get {PODS}"], env)
    assert cli.results()[0][1] == 0, cli.err
    assert [r["auth"] for r in stub.requests] == ["Bearer tok-1", "Bearer tok-2"]
    assert len(calls(plugin)) == 2


def test_exec_plugin_client_certificate(tmp_path, stub, pki):
    env, plugin = exec_env(tmp_path, stub, pki, cert=True)
    cli = run_cli([f"get {PODS}"], env)
    assert cli.results()[0][1] == 0, cli.err
    assert stub.requests[0]["cn"] == "chartreuse-test" and stub.requests[0]["auth"] is None


def test_exec_plugin_failures_are_one_clear_line(tmp_path, stub, pki):
    env, plugin = exec_env(tmp_path, stub, pki, token="t")
    (plugin / "plugin.json").write_text(json.dumps({"api": "client.authentication.k8s.io/v1beta1",
                                                    "token": "t"}))
    cli = run_cli([f"get {PODS}"], env)
    assert cli.results() == [("get", -1, None)]
    assert "answered in apiVersion client.authentication.k8s.io/v1beta1; the kubeconfig " \
        "asked for client.authentication.k8s.io/v1" in cli.errors()[-1]
    (plugin / "plugin").write_text("#!/bin/sh\necho 'login required' >&2\nexit 4\n")
    cli = run_cli([f"get {PODS}"], env)
    assert "login required" in cli.err
    assert cli.errors()[-1].endswith("exited with status 4")
    assert not stub.requests


# --- in-cluster: the service-account token rotates -------------------------------------

def in_cluster_env(tmp_path, stub, pki, token="token-1"):
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text(token)
    shutil.copy(pki / "ca.crt", sa / "ca.crt")
    (sa / "namespace").write_text("team-a\n")
    return {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(stub.port),
            "CHARTREUSE_SERVICEACCOUNT_DIR": str(sa)}, sa


def test_in_cluster_token_file_reread_when_it_changes(tmp_path, stub, pki):
    env, sa = in_cluster_env(tmp_path, stub, pki)

    def rotate(rec):  # as the kubelet does: a new file swapped in
        (sa / "token.new").write_text("token-2")
        os.replace(sa / "token.new", sa / "token")

    stub.on("GET", PODS, call(rotate))
    cli = run_cli(["info", f"get {PODS}", f"get {PODS}"], env)
    assert cli.value("origin") == "in-cluster"
    assert cli.value("namespace") == "team-a"
    assert [r[1] for r in cli.results()] == [0, 0]
    assert [r["auth"] for r in stub.requests] == ["Bearer token-1", "Bearer token-2"]


def test_in_cluster_token_reread_on_401_when_the_file_looks_the_same(tmp_path, stub, pki):
    env, sa = in_cluster_env(tmp_path, stub, pki, token="tokenA")
    stub.tokens = {"tokenA"}

    def rotate_in_place(rec):  # same inode, size and mtime: only a 401 tells
        st = os.stat(sa / "token")
        with open(sa / "token", "r+") as f:
            f.write("tokenB")
        os.utime(sa / "token", ns=(st.st_atime_ns, st.st_mtime_ns))
        stub.tokens = {"tokenB"}

    stub.on("GET", PODS, call(rotate_in_place))
    cli = run_cli([f"get {PODS}", f"get {PODS}"], env)
    assert [r[1] for r in cli.results()] == [0, 0], cli.err
    assert [r["auth"] for r in stub.requests] == ["Bearer tokenA", "Bearer tokenA",
                                                  "Bearer tokenB"]


def test_401_with_a_static_token_is_reported(tmp_path, stub, pki):
    stub.tokens = {"other"}
    cli = run_cli([f"get {PODS}"], token_env(tmp_path, stub, pki))
    assert cli.results() == [("get", -1, None)]
    assert cli.errors() == [f"chartreuse: error: kubernetes: GET {PODS}: 401 Unauthorized: "
                            "Unauthorized"]
    assert len(stub.requests) == 1


# --- retries ----------------------------------------------------------------------------

def test_retries_500_503_and_429_with_retry_after(tmp_path, stub, pki):
    stub.on("GET", PODS, reply(500, status_body(500, "InternalError", "boom")),
            reply(503, status_body(503, "ServiceUnavailable", "busy")),
            reply(429, status_body(429, "TooManyRequests", "slow down"), {"Retry-After": "1"}))
    cli = run_cli([f"get {PODS}"], token_env(tmp_path, stub, pki))
    assert cli.results() == [("get", 0, stub_echo(PODS))]
    t = [r["t"] for r in stub.requests]
    gaps = [b - a for a, b in zip(t, t[1:])]
    assert len(gaps) == 3
    # backoff 0.2 s then 0.4 s, each with up to half of it random; then Retry-After: 1
    assert 0.09 <= gaps[0] and 0.19 <= gaps[1] and 0.95 <= gaps[2], gaps
    assert gaps[0] < 1.5 and gaps[1] < 2.0 and gaps[2] < 3.0, gaps
    warnings = [l for l in cli.err_lines if "retrying" in l]
    assert len(warnings) == 3 and "(attempt 2 of 6)" in warnings[0]
    assert not cli.errors()


def test_retries_run_out_with_an_error_line(tmp_path, stub, pki):
    stub.on("GET", PODS, *[reply(503, status_body(503, "ServiceUnavailable", "busy"))] * 5)
    env = dict(token_env(tmp_path, stub, pki), CR_K8S_TEST_TRIES="3", CR_K8S_TEST_BASE_MS="20")
    cli = run_cli([f"get {PODS}"], env)
    assert cli.results() == [("get", TRANSIENT, None)]
    assert len(stub.requests) == 3
    assert cli.errors() == [f"chartreuse: error: kubernetes: GET {PODS}: 503 "
                            "ServiceUnavailable: busy"]


def test_text_answer_comes_back_as_it_came(tmp_path, stub, pki):
    """A Pod's log is text/plain: the text call hands it over as is, status and all."""
    path = "/api/v1/namespaces/default/pods/p/log"

    def text(code, body):
        def act(h, rec):
            data = body.encode()
            h.send_response(code)
            h.send_header("Content-Type", "text/plain")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return True
        return act
    stub.on("GET", path, text(200, "line one\nalembic: \"boom\"\n"), text(404, "gone"))
    cli = run_cli([f"text {path}?tailLines=20", f"text {path}"],
                  token_env(tmp_path, stub, pki))
    assert cli.results() == [("text", 200, 'line one\nalembic: "boom"\n'), ("text", 404, "gone")]
    assert stub.requests[0]["query"] == {"tailLines": ["20"]}
    assert not cli.errors()


def test_post_is_not_retried_on_500(tmp_path, stub, pki):
    stub.on("POST", "/api/v1/namespaces/default/configmaps",
            reply(500, status_body(500, "InternalError", "etcd timeout")))
    cli = run_cli(['post /api/v1/namespaces/default/configmaps {"metadata": {"name": "x"}}'],
                  token_env(tmp_path, stub, pki))
    assert cli.results() == [("post", TRANSIENT, None)]
    assert len(stub.requests) == 1
    assert cli.errors() == ["chartreuse: error: kubernetes: POST "
                            "/api/v1/namespaces/default/configmaps: 500 InternalError: "
                            "etcd timeout"]


def test_patch_retried_only_when_marked_idempotent(tmp_path, stub, pki):
    path = "/apis/apps/v1/namespaces/default/deployments/web"
    busy = reply(503, status_body(503, "ServiceUnavailable", "busy"))
    stub.on("PATCH", path, busy, busy)
    cli = run_cli([f'merge {path} {{"spec": {{"replicas": 0}}}}',
                   f'merge-idem {path} {{"spec": {{"replicas": 0}}}}'],
                  token_env(tmp_path, stub, pki))
    assert [r[1] for r in cli.results()] == [TRANSIENT, OK]
    assert len(stub.requests) == 3


def test_dropped_connection_retried_for_get_not_for_post(tmp_path, stub, pki):
    stub.on("GET", PODS, drop(), drop())
    cli = run_cli([f"get {PODS}"], token_env(tmp_path, stub, pki))
    assert cli.results() == [("get", 0, stub_echo(PODS))]
    assert len(stub.requests) == 3
    stub.requests.clear()
    stub.on("POST", PODS, drop())
    cli = run_cli([f'post {PODS} {{"metadata": {{"name": "p"}}}}'],
                  token_env(tmp_path, stub, pki))
    assert cli.results() == [("post", TRANSIENT, None)]
    assert len(stub.requests) == 1
    assert cli.errors()[0].startswith(f"chartreuse: error: kubernetes: POST {PODS}: {stub.url}: ")


def test_an_answer_cut_inside_its_headers_is_no_answer(tmp_path, stub, pki):
    dep = "/apis/apps/v1/namespaces/default/deployments/web"
    stub.on("GET", PODS, cut_headers())
    stub.on("PATCH", dep, cut_headers())
    stub.on("POST", PODS, cut_headers())
    cli = run_cli([f"get {PODS}", f'merge-idem {dep} {{"spec": {{}}}}',
                   f'post {PODS} {{"metadata": {{"name": "p"}}}}'],
                  token_env(tmp_path, stub, pki))
    assert [r[:2] for r in cli.results()] == [("get", OK), ("patch", OK), ("post", TRANSIENT)]
    assert [r["method"] for r in stub.requests] == ["GET", "GET", "PATCH", "PATCH", "POST"]
    assert cli.errors() == [f"chartreuse: error: kubernetes: POST {PODS}: {stub.url}: the "
                            "answer ended inside its headers"]


def test_timeout_is_retried_for_get(tmp_path, stub, pki):
    stub.on("GET", PODS, slow(3))
    env = dict(token_env(tmp_path, stub, pki), CR_K8S_TEST_TIMEOUT_MS="700")
    cli = run_cli([f"get {PODS}"], env)
    assert cli.results()[0][1] == 0
    assert len(stub.requests) == 2
    assert "timed out" in cli.err


def test_connection_refused_is_retried_even_for_post(tmp_path, stub, pki):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = token_env(tmp_path, stub, pki)
    text = Path(env["KUBECONFIG"]).read_text().replace(stub.url, f"https://127.0.0.1:{port}")
    Path(env["KUBECONFIG"]).write_text(text)
    env.update(CR_K8S_TEST_TRIES="3", CR_K8S_TEST_BASE_MS="20")
    cli = run_cli([f'post {PODS} {{"metadata": {{"name": "p"}}}}'], env)
    assert cli.results() == [("post", TRANSIENT, None)]
    assert len([l for l in cli.err_lines if "retrying" in l]) == 2
    assert cli.errors()[0].startswith(
        f"chartreuse: error: kubernetes: POST {PODS}: https://127.0.0.1:{port}: ")
    assert cli.errors()[0].endswith("(after 3 attempts)")


# --- read-modify-write and errors -------------------------------------------------------

def test_update_rereads_and_retries_on_409(tmp_path, stub, pki):
    stub.store[CM] = {"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "cm", "resourceVersion": "1"}, "data": {"a": "1"}}

    def someone_else_writes(rec):
        obj = stub.store[CM]
        obj["data"]["b"] = "2"
        obj["metadata"]["resourceVersion"] = "2"

    stub.on("PUT", CM, call(someone_else_writes))
    cli = run_cli([f"update {CM} stopped-by chartreuse", f"update {CM} stopped-by chartreuse"],
                  token_env(tmp_path, stub, pki))
    (_, rc1, obj1), (_, rc2, obj2) = cli.results()
    assert rc1 == 0 and rc2 == 0, cli.err
    assert obj1["metadata"]["labels"] == {"stopped-by": "chartreuse"}
    assert obj1["data"] == {"a": "1", "b": "2"}, "the concurrent change is kept"
    assert obj1["metadata"]["resourceVersion"] == "3"
    assert obj2 == obj1
    assert [r["method"] for r in stub.requests] == ["GET", "PUT", "GET", "PUT", "GET"]
    assert not cli.errors()


def test_error_line_names_verb_path_status_reason_and_message(tmp_path, stub, pki):
    path = "/apis/apps/v1/namespaces/x/deployments/y"
    msg = 'Deployment.apps "y" is invalid: spec.replicas: Invalid value: -1: must be >= 0'
    stub.on("PATCH", path, reply(422, status_body(422, "Invalid", msg)))
    stub.on("GET", "/apis/x", reply(502, None))
    cli = run_cli([f'strategic {path} {{"spec": {{"replicas": -1}}}}', "get /apis/x"],
                  dict(token_env(tmp_path, stub, pki), CR_K8S_TEST_TRIES="1"))
    assert cli.errors() == [
        f"chartreuse: error: kubernetes: PATCH {path}: 422 Invalid: {msg}",
        "chartreuse: error: kubernetes: GET /apis/x: 502 Bad Gateway"]


def test_not_found_is_a_result_for_get_and_delete(tmp_path, stub, pki):
    gone = reply(404, status_body(404, "NotFound", 'configmaps "cm" not found'))
    stub.on("GET", CM, gone)
    stub.on("DELETE", CM, gone)
    stub.on("GET", PODS, gone)
    cli = run_cli([f"get {CM}", f"delete {CM}", f"list {PODS}", f"request GET {CM}"],
                  token_env(tmp_path, stub, pki))
    assert [r[:2] for r in cli.results()] == [("get", NOT_FOUND), ("delete", NOT_FOUND),
                                              ("list", NOT_FOUND), ("status", 200)]
    assert cli.errors() == [f"chartreuse: error: kubernetes: GET {PODS}: 404 NotFound: "
                            'configmaps "cm" not found']


def test_each_failure_has_its_result_and_only_the_unexpected_are_reported(tmp_path, stub,
                                                                          pki):
    dep = "/apis/apps/v1/namespaces/default/deployments/web"
    stale = reply(409, status_body(409, "Conflict", "the object has been modified"))
    stub.on("PATCH", dep, stale, stale,
            reply(403, status_body(403, "Forbidden", "cannot patch deployments")))
    cli = run_cli([f'merge-guard {dep} {{"metadata": {{"resourceVersion": "1"}}}}',
                   f'merge {dep} {{"metadata": {{"resourceVersion": "1"}}}}',
                   f'merge {dep} {{"spec": {{}}}}'], token_env(tmp_path, stub, pki))
    assert [r[1] for r in cli.results()] == [CONFLICT, CONFLICT, FORBIDDEN]
    assert cli.errors() == [
        f"chartreuse: error: kubernetes: PATCH {dep}: 409 Conflict: the object has been modified",
        f"chartreuse: error: kubernetes: PATCH {dep}: 403 Forbidden: cannot patch deployments"]


MARKED = {"apiVersion": "apps/v1", "kind": "Deployment",
          "metadata": {"name": "web", "resourceVersion": "7", "generation": 3,
                       "annotations": {"chartreuse.wiremind.io/stopped": "true"}}}
UNMARK = json.dumps([{"op": "test", "path": "/metadata/annotations/chartreuse.wiremind.io~1stopped",
                      "value": "true"},
                     {"op": "remove", "path": "/metadata/annotations/chartreuse.wiremind.io~1stopped"}])


@pytest.mark.parametrize("mark_there", [True, False], ids=["refused", "test-failed"])
def test_a_422_to_a_json_patch_is_told_apart_by_reading_the_object(tmp_path, stub, pki,
                                                                   mark_there):
    """The API server answers 422 Invalid both when a test op fails and when validation or
    admission refuses the result (SPEC §6): the object read again tells which."""
    dep = "/apis/apps/v1/namespaces/default/deployments/web"
    obj = json.loads(json.dumps(MARKED))
    if not mark_there:
        obj["metadata"]["annotations"] = {"other": "x"}
    stub.store[dep] = obj
    msg = ('ValidatingAdmissionPolicy \'keep-marks\' with binding \'b\' denied request: '
           'annotations are frozen')
    stub.on("PATCH", dep, reply(422, status_body(422, "Invalid", msg)))
    cli = run_cli([f"jsonpatch-idem-absent {dep} {UNMARK}"], token_env(tmp_path, stub, pki))
    assert [r[1] for r in cli.results()] == [INVALID if mark_there else TEST_FAILED]
    assert [r["method"] for r in stub.requests] == ["PATCH", "GET"]
    if mark_there:
        assert cli.errors() == [f"chartreuse: error: kubernetes: PATCH {dep}: 422 Invalid: {msg}"]
    else:
        assert not cli.errors()


def test_secrets_never_printed(tmp_path, stub, pki):
    token = "s3cr3t-t0ken-value"
    stub.on("GET", PODS, reply(403, status_body(403, "Forbidden", f"token {token} is not "
                                                 "allowed to list pods")))
    cli = run_cli([f"get {PODS}"], token_env(tmp_path, stub, pki, token=token))
    assert token not in cli.err and "token *** is not allowed" in cli.err


# --- requests and bodies ----------------------------------------------------------------

def test_list_label_selector_is_url_encoded(tmp_path, stub, pki):
    sel = "app.kubernetes.io/instance=rel,tier in (a,b)"
    cli = run_cli([f"list {PODS} {sel}", f"list {PODS}?limit=5 release=rel"],
                  token_env(tmp_path, stub, pki))
    assert [r[1] for r in cli.results()] == [0, 0]
    assert stub.requests[0]["query"] == {"labelSelector": [sel]}
    assert " " not in stub.requests[0]["raw_path"]
    assert stub.requests[1]["query"] == {"limit": ["5"], "labelSelector": ["release=rel"]}


HOSTILE = {"#x": " x", "k": ["1", "true", "null", "- x", "a: b", "\"q\"", "back\\slash",
                             "tab\tnl\ncr\r", "\u0001\u001f\u007f", "é ✓ 😀", "\u2028", "",
                             "~", "yes", "0x1F"],
           "n": [1, -2.5, 1e300, True, False, None], "e": {}, "l": []}


def test_bodies_and_content_types(tmp_path, stub, pki):
    base = "/api/v1/namespaces/default/configmaps"
    body = json.dumps(HOSTILE)
    cli = run_cli([f"post {base} {body}", f"put {CM} {body}", f"merge {CM} {body}",
                   f"strategic {CM} {body}",
                   f'jsonpatch {CM} [{{"op": "replace", "path": "/data/a", "value": "#x"}}]',
                   f"delete {CM}"],
                  token_env(tmp_path, stub, pki))
    res = cli.results()
    assert [r[1] for r in res] == [0] * 6, cli.err
    want = [("POST", "application/json"), ("PUT", "application/json"),
            ("PATCH", "application/merge-patch+json"),
            ("PATCH", "application/strategic-merge-patch+json"),
            ("PATCH", "application/json-patch+json"), ("DELETE", None)]
    assert [(r[2]["method"], r[2]["contentType"]) for r in res] == want
    for r in res[:4]:
        assert r[2]["body"] == HOSTILE
    assert res[4][2]["body"] == [{"op": "replace", "path": "/data/a", "value": "#x"}]
    assert res[5][2]["body"] is None


@pytest.mark.parametrize("ascii_only", [False, True], ids=["utf8", "escaped"])
def test_json_round_trip_agrees_with_python(ascii_only):
    text = json.dumps(HOSTILE, ensure_ascii=ascii_only)
    cli = run_cli(None, {"CR_K8S_TEST_JSON": text})
    assert json.loads(cli.lines[0]) == HOSTILE


# --- watch ------------------------------------------------------------------------------

def pod(name, rv):
    return {"kind": "Pod", "metadata": {"name": name, "resourceVersion": str(rv)},
            "status": {"phase": "Running"}}


def test_watch_events_cut_across_chunks(tmp_path, stub, pki):
    e = [event("ADDED", pod("#a", 11)), event("MODIFIED", pod("b \"x\"", 12)),
         event("DELETED", pod("c", 13)), event("BOOKMARK", {"kind": "Pod", "metadata": {
             "resourceVersion": "14"}})]
    chunks = [e[0] + "\n" + e[1][:17], e[1][17:40], e[1][40:] + "\n\n" + e[2] + "\r\n",
              e[3]]  # the last event has no newline before the stream ends
    stub.on("GET", PODS, stream(chunks))
    cli = run_cli([f"watch {PODS}?resourceVersion=10 10000 0"], token_env(tmp_path, stub, pki))
    assert cli.value("watch") == "2", cli.err  # ended by the server
    assert cli.events() == [(json.loads(x)["type"], json.loads(x)["object"]) for x in e]
    assert stub.requests[0]["query"] == {"resourceVersion": ["10"], "watch": ["1"]}


@pytest.mark.parametrize("cut", ["event", "chunk"])
def test_a_watch_cut_midway_ends_for_the_caller_to_resume(tmp_path, stub, pki, cut):
    """A stream that breaks inside an event (or inside a chunk) has delivered what came
    whole: the watch ends (2) for the caller to resume from the last resourceVersion, and
    the piece of an event is not read as one."""
    e = [event("ADDED", pod("a", 11)), event("DELETED", pod("b", 12))]
    chunks = [e[0] + "\n" + e[1][:25]] if cut == "event" else [e[0] + "\n"]
    stub.on("GET", PODS, stream(chunks, cut=cut))
    cli = run_cli([f"watch {PODS}?resourceVersion=10 10000 0"], token_env(tmp_path, stub, pki))
    assert cli.value("watch") == "2", cli.err
    assert cli.events() == [("ADDED", json.loads(e[0])["object"])]
    assert not cli.errors(), cli.err


def test_watch_stops_when_told(tmp_path, stub, pki):
    stub.on("GET", PODS, stream([event("ADDED", pod(f"p{i}", i)) + "\n" for i in range(5)],
                                hold=20))
    cli = run_cli([f"watch {PODS}?watch=true 30000 2"], token_env(tmp_path, stub, pki))
    assert cli.value("watch") == "0"
    assert [o["metadata"]["name"] for _, o in cli.events()] == ["p0", "p1"]
    assert cli.elapsed < 15 * SLOWDOWN
    assert stub.requests[0]["query"] == {"watch": ["true"]}


def test_watch_timeout(tmp_path, stub, pki):
    stub.on("GET", PODS, stream([], hold=20))
    t0 = time.monotonic()
    cli = run_cli([f"watch {PODS} 700 0"], token_env(tmp_path, stub, pki))
    assert cli.value("watch") == "1"
    assert 0.6 < time.monotonic() - t0 < 15 * SLOWDOWN
    assert not cli.errors()


def test_watch_gone_and_errors(tmp_path, stub, pki):
    gone = event("ERROR", status_body(410, "Expired", "too old resource version: 1 (5)"))
    stub.on("GET", PODS, stream([event("ADDED", pod("a", 2)) + "\n" + gone + "\n"], hold=5))
    stub.on("GET", "/api/v1/namespaces/default/jobs",
            reply(410, status_body(410, "Gone", "too old")))
    stub.on("GET", "/api/v1/namespaces/default/secrets",
            reply(403, status_body(403, "Forbidden", "secrets is forbidden")))
    stub.on("GET", "/api/v1/namespaces/default/services",
            stream([event("ERROR", status_body(500, "InternalError", "watch chan error"))
                    + "\n"]))
    cli = run_cli([f"watch {PODS} 10000 0", "watch /api/v1/namespaces/default/jobs 10000 0",
                   "watch /api/v1/namespaces/default/secrets 10000 0",
                   "watch /api/v1/namespaces/default/services 10000 0"],
                  token_env(tmp_path, stub, pki))
    assert [l for l in cli.lines if l.startswith("watch=")] == ["watch=3", "watch=3",
                                                               "watch=-1", "watch=-1"]
    assert len(cli.events()) == 1
    assert cli.errors() == [
        "chartreuse: error: kubernetes: GET /api/v1/namespaces/default/secrets?watch=1: "
        "403 Forbidden: secrets is forbidden",
        "chartreuse: error: kubernetes: watch /api/v1/namespaces/default/services?watch=1: "
        "500 InternalError: watch chan error"]


def test_watch_retried_before_the_stream_starts(tmp_path, stub, pki):
    stub.on("GET", PODS, reply(503, status_body(503, "ServiceUnavailable", "busy")),
            stream([event("ADDED", pod("a", 2)) + "\n"]))
    cli = run_cli([f"watch {PODS} 10000 0"], token_env(tmp_path, stub, pki))
    assert cli.value("watch") == "2" and len(cli.events()) == 1
    assert len(stub.requests) == 2


# --- kubeconfigs in the forms real tools write ------------------------------------------

KUBECTL = str(REPO / ".cache" / "helm" / "v4" / "kubectl")


def kubeconfig_doc(stub, token="t0ken-forms", namespace="forms-ns"):
    return {"apiVersion": "v1", "kind": "Config", "preferences": {},
            "current-context": "prod",
            "clusters": [{"name": "prod", "cluster": {
                "server": stub.url, "certificate-authority": "pki/ca.crt"}}],
            "users": [{"name": "prod-user", "user": {"token": token}}],
            "contexts": [{"name": "prod", "context": {
                "cluster": "prod", "user": "prod-user", "namespace": namespace}}]}


def quoted_yaml(doc, quote):
    """Block YAML whose every scalar (keys too) is quoted with `quote`."""
    def q(s):
        s = str(s)
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"' if quote == '"' \
            else "'" + s.replace("'", "''") + "'"

    def emit(v, indent):
        pad = "  " * indent
        if isinstance(v, dict):
            if not v:
                return [pad + "{}"]
            out = []
            for k, x in v.items():
                if isinstance(x, (dict, list)) and x:
                    out.append(f"{pad}{q(k)}:")
                    out.extend(emit(x, indent + 1))
                else:
                    out.append(f"{pad}{q(k)}: {emit(x, 0)[0].strip()}")
            return out
        if isinstance(v, list):
            out = []
            for x in v:
                sub = emit(x, indent + 1)
                out.append(pad + "- " + sub[0].strip())
                out.extend(sub[1:])
            return out
        return [pad + q(v)]
    return "\n".join(emit(doc, 0)) + "\n"


def kubeconfig_forms(stub):
    doc = kubeconfig_doc(stub)
    block = yaml.safe_dump(doc, sort_keys=False)
    commented = "# written by a tool\n" + "".join(
        line + ("  # a comment\n" if ":" in line and not line.rstrip().endswith(":") else "\n")
        for line in block.splitlines())
    return {
        "json-one-line": json.dumps(doc),
        "json-indented": json.dumps(doc, indent=4) + "\n",
        "flow": yaml.safe_dump(doc, default_flow_style=True, width=4096),
        "double-quoted": quoted_yaml(doc, '"'),
        "single-quoted": quoted_yaml(doc, "'"),
        "current-context-quoted": block.replace("current-context: prod",
                                                'current-context: "prod"'),
        "crlf": block.replace("\n", "\r\n"),
        "crlf-quoted": quoted_yaml(doc, '"').replace("\n", "\r\n"),
        "comments": commented,
    }


FORMS = ["json-one-line", "json-indented", "flow", "double-quoted", "single-quoted",
         "current-context-quoted", "crlf", "crlf-quoted", "comments"]


@pytest.mark.parametrize("form", FORMS)
def test_kubeconfig_in_every_form_kubectl_reads(tmp_path, stub, pki, form):
    kube = tmp_path / "kube"
    (kube / "pki").mkdir(parents=True)
    shutil.copy(pki / "ca.crt", kube / "pki" / "ca.crt")
    path = kube / "config"
    path.write_text(kubeconfig_forms(stub)[form], newline="")
    # kubectl itself reads it as the same configuration
    seen = json.loads(subprocess.run(
        [KUBECTL, "--kubeconfig", str(path), "config", "view", "-o", "json"],
        capture_output=True, text=True, check=True).stdout)
    assert seen["current-context"] == "prod"
    assert seen["contexts"][0]["context"]["namespace"] == "forms-ns"
    cli = run_cli(["info", f"get {PODS}"], {"KUBECONFIG": str(path)})
    assert not cli.errors(), cli.err
    assert cli.value("namespace") == "forms-ns"
    assert cli.value("server") == stub.url
    assert cli.value("origin") == f"{path}, context prod"
    assert [r["auth"] for r in stub.seen(PODS)] == ["Bearer t0ken-forms"]


def test_kubeconfig_as_kubectl_flattens_it_to_json(tmp_path, stub, pki):
    """`kubectl config view --flatten -o json`: the CA inlined as data, every value quoted."""
    src = write_kubeconfig(tmp_path, stub, pki, {"token": "flat-token"}, namespace="flat")
    flat = subprocess.run([KUBECTL, "--kubeconfig", str(src), "config", "view", "--flatten",
                           "-o", "json"], capture_output=True, text=True, check=True).stdout
    assert '"certificate-authority-data": "' in flat
    path = tmp_path / "flat.json"
    path.write_text(flat)
    cli = run_cli(["info", f"get {PODS}"], {"KUBECONFIG": str(path)})
    assert not cli.errors(), cli.err
    assert cli.value("namespace") == "flat"
    assert [r["auth"] for r in stub.seen(PODS)] == ["Bearer flat-token"]


def test_kubeconfig_list_of_files_in_other_forms(tmp_path, stub, pki):
    """KUBECONFIG with a JSON file first (its quoted current-context wins) and YAML after."""
    kube = tmp_path / "kube"
    (kube / "pki").mkdir(parents=True)
    shutil.copy(pki / "ca.crt", kube / "pki" / "ca.crt")
    first = kube / "first.json"
    first.write_text(json.dumps({"current-context": "prod",
                                 "users": [{"name": "prod-user", "user": {"token": "first"}}]}))
    second = kube / "second"
    second.write_text(kubeconfig_forms(stub)["crlf-quoted"], newline="")
    env = {"KUBECONFIG": f"{first}:{second}"}
    merged = json.loads(subprocess.run([KUBECTL, "config", "view", "-o", "json"], env=dict(
        os.environ, **env), capture_output=True, text=True, check=True).stdout)
    assert merged["current-context"] == "prod"
    cli = run_cli(["info", f"get {PODS}"], env)
    assert not cli.errors(), cli.err
    assert cli.value("origin") == f"{second}, context prod"
    assert [r["auth"] for r in stub.seen(PODS)] == ["Bearer first"]
