"""PostgreSQL through libpq: `chartreuse wait postgres` (the init containers' command) and
the pg module's unit tests against a real PostgreSQL 15 (tests/pgserver.py)."""
import itertools
import os
import subprocess
import time
import urllib.parse

import pytest

from conftest import SLOWDOWN, UNIT, WRAPPER, run
from pgserver import free_port

# Everything a password can hold that breaks naive URL or SQL handling.
NASTY_PASSWORD = "p@ss:/?#%'\" w0rd x"
_ids = itertools.count()


def forbidden(password):
    """The forms of a password that must never be printed."""
    return [password, urllib.parse.quote(password, safe="")]


def assert_hidden(result_or_text, password=NASTY_PASSWORD):
    if isinstance(result_or_text, str):
        text = result_or_text
    else:
        text = result_or_text.out.decode(errors="replace") + \
            result_or_text.err.decode(errors="replace")
    for form in forbidden(password):
        assert form not in text


class Db:
    def __init__(self, server, name, user, password):
        self.server, self.name, self.user, self.password = server, name, user, password

    def url(self, password=None, **kw):
        return self.server.url(self.name, self.user,
                               self.password if password is None else password, **kw)


@pytest.fixture
def db(pg):
    """A fresh database owned by a role whose name and password need quoting."""
    n = next(_ids)
    d = Db(pg, f"cr test {n}", f"app user {n}", NASTY_PASSWORD)
    pg.create_database(d.name, owner=d.user, owner_password=d.password)
    yield d
    pg.drop_database(d.name, owner=d.user)


def wait(*args, env=None):
    t0 = time.monotonic()
    r = run(["wait", "postgres", *args], env=env)
    r.seconds = time.monotonic() - t0
    return r


# --- chartreuse wait postgres --------------------------------------------------------------

def test_wait_returns_at_once_when_the_server_answers(db):
    r = wait("--name", "main", "--url", db.url(), "--timeout", "30")
    assert r.rc == 0, r.err
    assert r.seconds < 10 * SLOWDOWN
    assert r.err_lines == ["chartreuse: database main: the server answers"]
    assert r.out == b""


def test_wait_does_not_need_valid_credentials(db):
    # The server answering is what the init container waits for; credentials are the
    # migration's business (it reports them, naming the database).
    assert wait("--url", db.url(password="wrong"), "--timeout", "5").rc == 0


def test_wait_gives_up_at_the_deadline_with_one_masked_line(db):
    port = free_port()
    r = wait("--name", "main", "--url", db.url(port=port), "--timeout", "2")
    assert r.rc == 1
    assert 1.9 <= r.seconds < 15 * SLOWDOWN
    assert len(r.err_lines) == 1, r.err_lines
    line = r.err_lines[0]
    user = urllib.parse.quote(db.user, safe="")
    assert line.startswith(f"chartreuse: error: database main (postgresql+psycopg2://{user}:***@"
                           f"127.0.0.1:{port}/")
    assert "no answer after 2 s" in line and "Connection refused" in line
    assert_hidden(r)


def test_wait_reads_the_url_and_password_from_the_environment(db):
    url_without_password = db.url().replace(":" + urllib.parse.quote(db.password, safe=""), "")
    assert ":***@" not in url_without_password and "@" in url_without_password
    env = {"CHARTREUSE_DB_0_URL": url_without_password,
           "CHARTREUSE_DB_0_PASSWORD": db.password}
    r = wait("--name", "main", "--url-env", "CHARTREUSE_DB_0_URL", "--timeout", "10", env=env)
    assert r.rc == 0, r.err
    assert_hidden(r)

    # At a dead port, the URL shown proves the password was put in, and is masked.
    dead = url_without_password.replace(f":{db.server.port}/", f":{free_port()}/")
    env["CHARTREUSE_DB_0_URL"] = dead
    r = wait("--url-env", "CHARTREUSE_DB_0_URL", "--timeout", "1", env=env)
    assert r.rc == 1
    assert ":***@127.0.0.1:" in r.err_lines[0]
    assert_hidden(r)


def test_wait_keeps_the_urls_own_password(db):
    env = {"CR_URL": db.url(), "CR_PASSWORD": "not-this-one"}
    r = wait("--url-env", "CR_URL", "--timeout", "10", env=env)
    assert r.rc == 0, r.err


def test_wait_with_a_missing_url_variable_is_bad_usage():
    r = wait("--url-env", "CHARTREUSE_TEST_NO_SUCH_VARIABLE", env={})
    assert r.rc == 2
    assert r.err_lines == ["chartreuse: error: wait postgres: the environment variable "
                           "CHARTREUSE_TEST_NO_SUCH_VARIABLE (--url-env) is not set"]


@pytest.mark.parametrize("args", [
    [],
    ["--url", "postgresql://h/db", "--url-env", "X"],
    ["--url", "postgresql://h/db", "--timeout", "soon"],
    ["--url", "postgresql://h/db", "--timeout", "-1"],
    ["--url", "postgresql://h/db", "--bogus"],
    ["--url"],
], ids=["no-url", "two-urls", "timeout-word", "timeout-negative", "unknown-option",
        "missing-value"])
def test_wait_bad_usage(args):
    r = wait(*args)
    assert r.rc == 2
    assert len(r.err_lines) == 1 and r.err_lines[0].startswith("chartreuse: error: ")


def test_wait_needs_a_service():
    assert run(["wait"]).rc == 2
    assert run(["wait", "redis"]).rc == 2


def test_wait_help():
    r = run(["wait", "--help"])
    assert r.rc == 0 and b"--url-env VAR" in r.out
    assert run(["wait", "postgres", "--help"]).rc == 0


def test_wait_refuses_a_url_of_another_database():
    r = wait("--url", "mysql+pymysql://app:" + urllib.parse.quote(NASTY_PASSWORD, safe="") +
             "@db/app", "--timeout", "30")
    assert r.rc == 1 and r.seconds < 10 * SLOWDOWN
    assert r.err_lines == ["chartreuse: error: database main (mysql+pymysql://app:***@db/app): "
                           "not a PostgreSQL URL (scheme 'mysql+pymysql')"]
    assert_hidden(r)


def test_wait_reports_a_parameter_libpq_refuses_at_once():
    r = wait("--url", "postgresql://app:secret-pw@127.0.0.1:1/app?sslmode=sometimes",
             "--timeout", "60")
    assert r.rc == 1 and r.seconds < 10 * SLOWDOWN
    assert len(r.err_lines) == 1 and "sslmode" in r.err_lines[0]
    assert_hidden(r, "secret-pw")


# --- the pg module against the server (tests/unit/test_pg.c) -----------------------------

def run_unit(name, db):
    env = {"CR_TEST_PG_URL": db.url(), "CR_TEST_PG_PASSWORD": db.password,
           "CR_TEST_PG_BAD_URL": db.url(password="wrong " + db.password)}
    proc = subprocess.run(WRAPPER + [UNIT, name], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_hidden(proc.stdout + proc.stderr)
    return [l for l in proc.stderr.splitlines() if l.strip()]


@pytest.mark.parametrize("name", ["pg_live_connects_as_chartreuse_and_masks_the_password",
                                  "pg_live_stored_revisions", "pg_live_tables"])
def test_pg_module(name, db):
    run_unit(name, db)


def test_pg_wrong_password_is_one_masked_line(db):
    lines = run_unit("pg_live_wrong_password_is_one_masked_line", db)
    assert len(lines) == 1, lines
    user = urllib.parse.quote(db.user, safe="")
    assert lines[0].startswith(f"chartreuse: error: database live (postgresql+psycopg2://{user}"
                               ":***@127.0.0.1:")
    assert "cannot connect: " in lines[0] and "password authentication failed" in lines[0]
    assert_hidden(lines[0], "wrong " + db.password)


def test_pg_statement_errors_and_notices_go_through_the_log(db):
    lines = run_unit("pg_live_exec_reports_statement_and_sqlstate", db)
    assert lines == [
        'chartreuse: error: database live: SELECT * FROM ...: 42P01 relation "no_such_table" '
        'does not exist',
        'chartreuse: database live: table "no_such_table" does not exist, skipping',
    ]


def test_pg_lock_contention(db):
    lines = run_unit("pg_live_lock_contention", db)
    # The wait for the lock is said at once; then the deliberate double unlock: the
    # server's warning, then ours.
    assert lines == [
        "chartreuse: database live: another migration holds its lock; waiting for it to "
        "finish (at most 1 s)",
        "chartreuse: warning: database live: you don't own a lock of type ExclusiveLock",
        "chartreuse: error: database live: advisory lock 426952979060 was not held",
    ]


# --- URLs as users write them ---------------------------------------------------------------

# SQLAlchemy reads a password unencoded up to the '@' before the host (SPEC §6): these are
# such passwords, each as a user would paste it into a URL.
UNENCODED = ["pa/ss:w#r?d%zz 'q\"", "p@ss/w:rd#1"]


@pytest.mark.parametrize("password", UNENCODED, ids=["slash-query-hash", "at-slash"])
def test_a_password_written_unencoded_connects_migrates_and_stays_hidden(pg, tmp_path,
                                                                          password):
    import alembic_projects as ap
    import yaml
    from sqlalchemy.engine import make_url
    n = next(_ids)
    name, owner = f"unenc_{n}", f"unenc_owner_{n}"
    pg.create_database(name, owner=owner, owner_password=password)
    try:
        url = f"postgresql+psycopg2://{owner}:{password}@{pg.host}:{pg.port}/{name}"
        if "@" not in password:  # what Alembic itself reads from the URL as written
            assert make_url(url).password == password
        r = wait("--url", url, "--timeout", "5")
        assert r.rc == 0, r.err_lines
        project = ap.linear(tmp_path / "project")
        cfg = tmp_path / "config.yaml"
        cfg.write_text(yaml.safe_dump({"release": "demo", "stopPods": False, "databases": [
            {"name": "main", "alembicDirectory": str(project.path)}]}))
        r = run(["migrate", "--config", str(cfg)], env={"CHARTREUSE_DB_0_URL": url},
                timeout=180)
        assert r.rc == 0, r.err_lines
        assert_hidden(r, password)
        applied = pg.psql(name, "SELECT version_num FROM alembic_version")
        assert [row[0] for row in applied] == [project.revisions[-1]]
        # a connection that fails shows the URL with its password masked, whole
        r = run(["migrate", "--config", str(cfg)],
                env={"CHARTREUSE_DB_0_URL": url.replace(name, "no_such_db")}, timeout=180)
        assert r.rc != 0
        assert_hidden(r, password)
        assert f"{owner}:***@{pg.host}" in r.err.decode()
    finally:
        pg.drop_database(name, owner=owner)
