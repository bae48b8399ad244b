"""A throw-away PostgreSQL 15 server for the tests: initdb into a temporary directory, one
server on a free 127.0.0.1 port with password (SCRAM) authentication over TCP, durability
switched off for speed, stopped and deleted when the session ends (even on failure).

As root, initdb and the server refuse to run, so both run as the `postgres` system user
(or a dedicated user when that one doesn't exist). Everything the helpers send goes
through psycopg2 parameters and psycopg2.sql identifiers, never through string pasting:
the tests use role names and passwords full of quotes, '@', '%' and spaces on purpose."""
import atexit
import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

import psycopg2
from psycopg2 import sql

PG_BIN = Path("/usr/lib/postgresql/15/bin")
ADMIN_USER = "cr_admin"
ADMIN_PASSWORD = "admin-pw"
FALLBACK_USER = "cr-pgtest"
PR_SET_PDEATHSIG = 1  # <sys/prctl.h>


def free_port():
    """A TCP port nobody listens on right now (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_user():
    """The account the server runs as: ourselves unless we are root."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    for name in ("postgres", FALLBACK_USER):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
    subprocess.run(["useradd", "--system", "--no-create-home", FALLBACK_USER], check=True)
    return pwd.getpwnam(FALLBACK_USER)


def quote_url_part(s):
    return urllib.parse.quote(s, safe="")


class PgServer:
    def __init__(self):
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(f"{PG_BIN}/initdb is missing: run scripts/setup.sh")
        self.user = _server_user()
        self.dir = Path(tempfile.mkdtemp(prefix="chartreuse-pg-"))
        self.data = self.dir / "data"
        self.host = "127.0.0.1"
        self.port = None
        self.proc = None
        atexit.register(self.stop)
        try:
            self._initdb()
            self._start()
        except BaseException:
            self.stop()
            raise

    # --- lifecycle ---------------------------------------------------------------------
    def _as_server_user(self):
        if os.geteuid() != 0:
            return {}
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}

    @staticmethod
    def _die_with_parent():
        """Runs in the server's process before exec: when the test process dies without
        running its exit handlers (SIGKILL, a timeout's SIGTERM), the kernel sends the
        server SIGQUIT (immediate shutdown), so no server outlives the tests."""
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGQUIT)

    def _initdb(self):
        os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        os.chmod(self.dir, 0o700)
        pwfile = self.dir / "pwfile"
        pwfile.write_text(ADMIN_PASSWORD + "\n")
        os.chown(pwfile, self.user.pw_uid, self.user.pw_gid)
        proc = subprocess.run(
            [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", ADMIN_USER,
             f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256",
             "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
            capture_output=True, text=True, cwd=self.dir, **self._as_server_user())
        if proc.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{proc.stdout}{proc.stderr}")

    def _start(self, port=None):
        for _ in range(1 if port else 5):  # another process may take a free port first
            self.port = port or free_port()
            log = open(self.dir / "server.log", "ab")
            self.proc = subprocess.Popen(
                [str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port),
                 "-k", str(self.dir), "-c", f"listen_addresses={self.host}",
                 "-c", "fsync=off", "-c", "full_page_writes=off",
                 "-c", "synchronous_commit=off", "-c", "max_connections=100"],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.dir,
                start_new_session=True, preexec_fn=self._die_with_parent,
                **self._as_server_user())
            log.close()
            if self._wait_ready():
                return
            self._kill()
        raise RuntimeError("PostgreSQL did not start:\n" + self.log())

    def _wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                self.connect().close()
                return True
            except psycopg2.OperationalError:
                time.sleep(0.05)
        return False

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # immediate shutdown: nothing to keep
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self, down_for=0.0):
        """A restart on the same port: a fast shutdown (every session is ended and its
        transaction rolled back), `down_for` seconds with nothing listening, a start.
        From the main thread only: the server dies with the thread that started it."""
        self.halt()
        time.sleep(down_for)
        self.resume()

    def halt(self):
        """The first half of restart(): a fast shutdown."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def resume(self):
        """The second half: the server again, on the same port."""
        self._start(self.port)

    def stop(self):
        self._kill()
        if self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            return (self.dir / "server.log").read_text(errors="replace")
        except OSError:
            return ""

    # --- helpers -----------------------------------------------------------------------
    def connect(self, db="postgres", user=ADMIN_USER, password=ADMIN_PASSWORD):
        conn = psycopg2.connect(host=self.host, port=self.port, dbname=db, user=user,
                                password=password, connect_timeout=5)
        conn.autocommit = True
        return conn

    def url(self, db, user=ADMIN_USER, password=ADMIN_PASSWORD,
            scheme="postgresql+psycopg2", port=None):
        """A SQLAlchemy URL with user and password percent-encoded."""
        auth = quote_url_part(user)
        if password is not None:
            auth += ":" + quote_url_part(password)
        return f"{scheme}://{auth}@{self.host}:{port or self.port}/{quote_url_part(db)}"

    def create_database(self, name, owner=None, owner_password=None):
        """A new database; with `owner`, a login role of that name owns it."""
        with self._admin() as cur:
            if owner:
                # No query parameters here: psycopg2 would read a '%' of the quoted
                # role name as a placeholder. sql.Literal quotes the password.
                cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(owner), sql.Literal(owner_password)))
            cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(owner or ADMIN_USER)))
        return name

    def drop_database(self, name, owner=None):
        with self._admin() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                        .format(sql.Identifier(name)))
            if owner:
                cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(owner)))

    @contextlib.contextmanager
    def _admin(self, db="postgres"):
        conn = self.connect(db)
        try:
            with conn.cursor() as cur:
                yield cur
        finally:
            conn.close()

    def psql(self, db, statement, params=None):
        """Runs one statement in db; returns its rows (None when it returns none)."""
        with self._admin(db) as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else None
