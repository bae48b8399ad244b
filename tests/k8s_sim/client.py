"""A minimal HTTP client for talking to the simulator from tests at the wire level (status
codes, headers, watch streams), where kubectl would hide the details."""
import http.client
import json
import ssl
import urllib.parse


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body) if self.body else None


class Client:
    def __init__(self, sim, token=None, cert=None, timeout=10):
        self.sim = sim
        self.token = sim.token if token is None else token
        self.cert = cert
        self.timeout = timeout

    def _conn(self, timeout=None):
        host, port = self.sim.host, self.sim.port
        if not self.sim.tls:
            return http.client.HTTPConnection(host, port, timeout=timeout or self.timeout)
        ctx = ssl.create_default_context(cafile=self.sim.ca_path)
        if self.cert:
            ctx.load_cert_chain(*[str(p) for p in self.cert])
        return http.client.HTTPSConnection(host, port, context=ctx,
                                           timeout=timeout or self.timeout)

    def _headers(self, ctype=None, accept=None):
        h = {"User-Agent": "k8s-sim-test-client/1.0"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        if ctype:
            h["Content-Type"] = ctype
        if accept:
            h["Accept"] = accept
        return h

    def request(self, method, path, body=None, ctype="application/json", query=None,
                accept=None):
        if query:
            path += "?" + urllib.parse.urlencode(query)
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        conn = self._conn()
        try:
            conn.request(method, path, body=data,
                         headers=self._headers(ctype if data is not None else None, accept))
            resp = conn.getresponse()
            return Response(resp.status, dict(resp.getheaders()), resp.read())
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def watch(self, path, query=None, timeout=5):
        """Yield watch events (dicts) until the server ends the stream."""
        q = {"watch": "true"}
        q.update(query or {})
        conn = self._conn(timeout)
        try:
            conn.request("GET", path + "?" + urllib.parse.urlencode(q),
                         headers=self._headers())
            resp = conn.getresponse()
            if resp.status != 200:
                raise RuntimeError(f"watch {path}: {resp.status} {resp.read()!r}")
            while True:
                line = resp.readline()
                if not line:
                    return
                yield json.loads(line)
        finally:
            conn.close()
