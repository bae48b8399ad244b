"""A throw-away certificate authority made with the `openssl` command line.

Why real TLS: chartreuse talks to the API server through libcurl with the CA from a
kubeconfig or the in-cluster service-account directory; a plain-HTTP simulator would leave
CA loading, hostname checks and client-certificate authentication untested. EC P-256 keys
keep generation fast (a few milliseconds per certificate). The CA and the server certificate
are made once per Python process and shared by every simulator (see `shared_authority`);
a test that needs its own can build a `CertAuthority` directly.
"""
import atexit
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

SERVER_SANS = ("IP:127.0.0.1", "IP:::1", "DNS:localhost", "DNS:kubernetes",
               "DNS:kubernetes.default", "DNS:kubernetes.default.svc",
               "DNS:kubernetes.default.svc.cluster.local")


def _openssl(*args, cwd):
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {proc.stderr.strip()}")


class CertAuthority:
    """A CA, a server certificate for 127.0.0.1/localhost and client certificates on demand.

    Files live in `directory`: ca.crt, ca.key, server.crt, server.key and, per client,
    client-<name>.crt/.key."""

    def __init__(self, directory=None):
        self._own_dir = directory is None
        self.dir = Path(directory or tempfile.mkdtemp(prefix="k8s-sim-pki-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca_crt = self.dir / "ca.crt"
        self.ca_key = self.dir / "ca.key"
        self.server_crt = self.dir / "server.crt"
        self.server_key = self.dir / "server.key"
        self._lock = threading.Lock()
        self._clients = {}
        self._serial = 1
        self._make_ca()
        self._sign("server", "kube-apiserver", (), self.server_crt, self.server_key,
                   ["extendedKeyUsage=serverAuth",
                    "subjectAltName=" + ",".join(SERVER_SANS)])

    def _make_ca(self):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", str(self.ca_key), "-out", str(self.ca_crt),
                 "-days", "3650", "-subj", "/CN=k8s-sim-ca",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
                 cwd=self.dir)

    def _sign(self, stem, cn, groups, crt, key, extensions):
        subj = "".join(f"/O={g}" for g in groups) + f"/CN={cn}"
        csr = self.dir / f"{stem}.csr"
        ext = self.dir / f"{stem}.ext"
        ext.write_text("\n".join(["basicConstraints=CA:FALSE",
                                  "keyUsage=critical,digitalSignature,keyEncipherment",
                                  *extensions]) + "\n")
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", subj, cwd=self.dir)
        with self._lock:
            self._serial += 1
            serial = self._serial
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.ca_crt),
                 "-CAkey", str(self.ca_key), "-set_serial", str(serial), "-days", "3650",
                 "-out", str(crt), "-extfile", str(ext), cwd=self.dir)
        csr.unlink()
        ext.unlink()

    def client_cert(self, cn, groups=()):
        """(certificate path, key path) for a client whose user name is `cn` and whose
        groups are `groups` (the API server reads them from CN and O)."""
        groups = tuple(groups)
        with self._lock:
            hit = self._clients.get((cn, groups))
        if hit:
            return hit
        stem = "client-" + "".join(c if c.isalnum() else "_" for c in cn)
        if groups:
            stem += "-" + str(abs(hash(groups)) % 100000)
        crt, key = self.dir / f"{stem}.crt", self.dir / f"{stem}.key"
        self._sign(stem, cn, groups, crt, key, ["extendedKeyUsage=clientAuth"])
        with self._lock:
            self._clients[(cn, groups)] = (crt, key)
        return crt, key

    def cleanup(self):
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


_shared = None
_shared_lock = threading.Lock()


def shared_authority():
    """The process-wide CA (made on first use, deleted at exit)."""
    global _shared
    with _shared_lock:
        if _shared is None or not _shared.ca_crt.exists():
            _shared = CertAuthority()
            atexit.register(_shared.cleanup)
        return _shared


def pem_bytes(path):
    return Path(path).read_bytes()


__all__ = ["CertAuthority", "shared_authority", "pem_bytes", "SERVER_SANS"]
