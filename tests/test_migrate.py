"""`chartreuse migrate` against a real PostgreSQL 15 and the real Alembic: the decision
from the revision graph, the empty-database rule, the upgrade, its verification, the lock,
and what a failure reports."""
import os
import stat
import subprocess
import textwrap
import uuid
from pathlib import Path

import pytest
import yaml

import alembic_projects as ap
from conftest import BIN, WRAPPER, run

HOSTILE_PASSWORD = "p@ss:/?#%'\" w0rd x"


@pytest.fixture
def alembic_log(tmp_path):
    """A wrapper standing for `alembic` that records each call, so a test can assert that
    Alembic was (or was not) started."""
    log = tmp_path / "alembic-calls.log"
    wrapper = tmp_path / "alembic-wrapper"
    wrapper.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        echo "$*" >> {log}
        exec /usr/bin/alembic "$@"
        """))
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    return wrapper, log


def calls(log):
    return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def database(pg):
    """A fresh database owned by a role with a hostile password; yields its URL."""
    name = "db_" + uuid.uuid4().hex[:10]
    owner = "own_" + name
    pg.create_database(name, owner=owner, owner_password=HOSTILE_PASSWORD)
    yield pg.url(name, user=owner, password=HOSTILE_PASSWORD)
    pg.drop_database(name, owner=owner)


def write_config(tmp_path, databases, **top):
    cfg = {"release": "demo", "stopPods": False, **top, "databases": databases}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def db_entry(project, name="main", **kw):
    entry = {"name": name, "alembicDirectory": str(project.path),
             "alembicConfigFile": project.ini}
    if project.section:
        entry["alembicSection"] = project.section
    entry.update(kw)
    return entry


def migrate(config, *args, urls=(), alembic=None, extra_env=None, **kw):
    env = {f"CHARTREUSE_DB_{i}_URL": u for i, u in enumerate(urls)}
    env.update(extra_env or {})
    if alembic:
        env["CHARTREUSE_ALEMBIC"] = str(alembic)
    return run(["migrate", "--config", str(config), *args], env=env, timeout=180, **kw)


def stored(pg, url_db, table="alembic_version"):
    rows = pg.psql(url_db, f"SELECT version_num FROM {table} ORDER BY 1")
    return sorted(r[0] for r in rows)


def dbname(url):
    from urllib.parse import unquote, urlsplit
    return unquote(urlsplit(url).path[1:])


def tables(pg, db):
    rows = pg.psql(db, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return sorted(r[0] for r in rows)


def no_secret(result):
    text = result.out + result.err
    assert HOSTILE_PASSWORD.encode() not in text
    from urllib.parse import quote
    assert quote(HOSTILE_PASSWORD, safe="").encode() not in text


# --- the decision --------------------------------------------------------------------------

@pytest.mark.parametrize("builder", ["linear", "branches", "merged", "depends_on",
                                     "annotated", "lying_docstring", "commented_out",
                                     "multi_location", "named_section", "ini_in_subfolder",
                                     "package_location", "package_version_locations"])
def test_fresh_database_is_migrated_to_the_heads_then_left_alone(
        builder, pg, database, tmp_path, alembic_log):
    project = ap.PROJECTS[builder](tmp_path / "project")
    cfg = write_config(tmp_path, [db_entry(project)])
    wrapper, log = alembic_log
    r = migrate(cfg, urls=[database], alembic=wrapper)
    assert r.rc == 0, r.err.decode()
    no_secret(r)
    db = dbname(database)
    # Every revision ran (each creates its table) ...
    assert set(tables(pg, db)) >= {project.table(rev) for rev in project.revisions}
    assert len([c for c in calls(log) if "upgrade" in c]) == 1
    assert HOSTILE_PASSWORD not in log.read_text()  # Alembic's argv
    # ... and the second run decides "nothing to do" without starting Alembic at all.
    r2 = migrate(cfg, urls=[database], alembic=wrapper)
    assert r2.rc == 0, r2.err.decode()
    assert "up to date" in r2.err.decode()
    assert len(calls(log)) == 1


def test_depends_on_head_is_not_stored_and_still_counts_as_applied(pg, database, tmp_path):
    project = ap.depends_on(tmp_path / "project")
    cfg = write_config(tmp_path, [db_entry(project)])
    assert migrate(cfg, urls=[database]).rc == 0
    # Alembic stores the tips only: b2 stands for a2 through depends_on.
    assert stored(pg, dbname(database)) == ["b2"]
    dry = migrate(cfg, "--dry-run", urls=[database])
    assert dry.rc == 0 and dry.text.strip() == "main: up to date, nothing to do"


def test_one_revision_behind(pg, database, tmp_path, alembic_log):
    project = ap.linear(tmp_path / "project", 3)
    cfg = write_config(tmp_path, [db_entry(project)])
    assert migrate(cfg, urls=[database]).rc == 0
    ap.write_revisions(project.path, [("lin0004", "lin0003", {})],
                       versions=project.path / "migrations" / "versions")
    dry = migrate(cfg, "--dry-run", urls=[database])
    assert dry.text.strip() == "main: migration needed (not applied: lin0004)"
    wrapper, log = alembic_log
    r = migrate(cfg, urls=[database], alembic=wrapper)
    assert r.rc == 0, r.err.decode()
    assert stored(pg, dbname(database)) == ["lin0004"]
    assert calls(log) == [f"-c {calls(log)[0].split()[1]} upgrade head"]


def test_two_heads_upgrade_heads(pg, database, tmp_path, alembic_log):
    project = ap.branches(tmp_path / "project")
    wrapper, log = alembic_log
    r = migrate(write_config(tmp_path, [db_entry(project)]), urls=[database], alembic=wrapper)
    assert r.rc == 0
    assert calls(log)[0].endswith("upgrade heads")
    assert stored(pg, dbname(database)) == ["a2", "b1"]


def test_empty_database_with_allow_empty_off_is_left_alone(pg, database, tmp_path, alembic_log):
    project = ap.linear(tmp_path / "project", 2)
    cfg = write_config(tmp_path, [db_entry(project, allowMigrationFromEmptyDatabase=False)])
    wrapper, log = alembic_log
    r = migrate(cfg, urls=[database], alembic=wrapper)
    assert r.rc == 0
    assert "left alone" in r.err.decode()
    assert calls(log) == [] and tables(pg, dbname(database)) == []


def test_dry_run_changes_nothing(pg, database, tmp_path, alembic_log):
    project = ap.linear(tmp_path / "project", 2)
    wrapper, log = alembic_log
    r = migrate(write_config(tmp_path, [db_entry(project)]), "--dry-run", urls=[database],
                alembic=wrapper)
    assert r.rc == 0
    assert r.text == "main: migration needed (not applied: lin0001, lin0002)\n"
    assert calls(log) == [] and tables(pg, dbname(database)) == []


# --- failures ------------------------------------------------------------------------------

def test_missing_down_revision_is_a_clear_error(database, tmp_path, alembic_log):
    project = ap.missing_down_revision(tmp_path / "project")
    wrapper, log = alembic_log
    r = migrate(write_config(tmp_path, [db_entry(project)]), urls=[database], alembic=wrapper)
    assert r.rc == 1
    err = r.err.decode()
    assert "mis02" in err and str(project.files["mis03"].name) in err
    assert calls(log) == []


def test_failing_migration_names_the_revision_and_leaves_the_database_unchanged(
        pg, database, tmp_path):
    project = ap.failing(tmp_path / "project")
    r = migrate(write_config(tmp_path, [db_entry(project)]), urls=[database])
    assert r.rc == 1
    err = r.err.decode()
    assert "failed at revision bad03" in err
    assert "main: FAILED" in err
    no_secret(r)
    # Transactional DDL: nothing of the failed run is left.
    db = dbname(database)
    assert tables(pg, db) == [] or tables(pg, db) == ["alembic_version"]


def test_uncertain_scripts_fall_back_to_alembic_heads(pg, database, tmp_path):
    project = ap.computed(tmp_path / "project")
    cfg = write_config(tmp_path, [db_entry(project)])
    # Only the head is known to be missing, not lin0001 and lin0002 before it: said so.
    unknown = ("at least comp03 (the heads not stored; which revisions before them are "
               "missing is unknown: the scripts were not read natively)")
    dry = migrate(cfg, "--dry-run", urls=[database])
    assert dry.rc == 0 and dry.text == f"main: migration needed (not applied: {unknown})\n"
    assert f"heads comp03 (from `alembic heads`); not applied {unknown}" in dry.err.decode()
    r = migrate(cfg, urls=[database])
    assert r.rc == 0, r.err.decode()
    assert "asking `alembic heads`" in r.err.decode()
    assert str(project.files["comp03"]) + ":" in r.err.decode()  # which file, which line
    assert stored(pg, dbname(database)) == ["comp03"]
    again = migrate(cfg, "--dry-run", urls=[database])
    assert again.text == "main: up to date, nothing to do\n"  # all heads stored: exact


def test_ini_in_a_subfolder_reads_and_runs_alembic_in_the_same_directory(pg, database,
                                                                        tmp_path):
    """The decision and every alembic call resolve the ini's relative paths against
    alembicDirectory, as `alembic -c conf/alembic.ini` run there does: natively, and when
    an uncertain script makes chartreuse ask `alembic heads`."""
    project = ap.ini_in_subfolder(tmp_path / "project")
    cfg = write_config(tmp_path, [db_entry(project)])
    dry = migrate(cfg, "--dry-run", urls=[database])
    assert dry.text == "main: migration needed (not applied: sub01, sub02, sub03)\n"
    assert migrate(cfg, urls=[database]).rc == 0
    assert stored(pg, dbname(database)) == ["sub03"]
    ap.add_computed(project, "sub04", "sub03", versions=project.path / "more")
    r = migrate(cfg, urls=[database])
    assert r.rc == 0, r.err.decode()
    assert "asking `alembic heads`" in r.err.decode()
    assert stored(pg, dbname(database)) == ["sub04"]


def test_password_never_appears_even_when_the_connection_fails(pg, tmp_path):
    project = ap.linear(tmp_path / "project", 1)
    url = pg.url("nosuchdb", user="nosuchuser", password=HOSTILE_PASSWORD)
    r = migrate(write_config(tmp_path, [db_entry(project)]), urls=[url])
    assert r.rc == 1
    assert "main: FAILED" in r.err.decode()
    no_secret(r)


def test_three_databases_one_failing(pg, tmp_path):
    names = []
    urls = []
    for i in range(3):
        name = "tri_" + uuid.uuid4().hex[:8]
        pg.create_database(name)
        names.append(name)
        urls.append(pg.url(name))
    try:
        good = ap.linear(tmp_path / "good", 2)
        bad = ap.failing(tmp_path / "bad")
        cfg = write_config(tmp_path, [db_entry(good, "one"), db_entry(bad, "two"),
                                      db_entry(good, "three")])
        r = migrate(cfg, urls=urls)
        assert r.rc == 1
        err = r.err.decode()
        assert "one: migrated" in err and "three: migrated" in err
        assert "two: FAILED" in err
        assert stored(pg, names[0]) == ["lin0002"] and stored(pg, names[2]) == ["lin0002"]
    finally:
        for name in names:
            pg.drop_database(name)


def test_two_concurrent_runs_on_one_database_run_alembic_once(pg, database, tmp_path,
                                                              alembic_log):
    specs = [("slow01", None, {"upgrade": 'op.execute("SELECT pg_sleep(2)")\n    '
                                         + ap.create_table("slow01")})]
    project = ap._project(tmp_path / "project", specs, ["slow01"])
    cfg = write_config(tmp_path, [db_entry(project)])
    wrapper, log = alembic_log
    env = dict(os.environ, CHARTREUSE_DB_0_URL=database, CHARTREUSE_ALEMBIC=str(wrapper))
    cmd = WRAPPER + [BIN, "migrate", "--config", str(cfg)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    assert len(calls(log)) == 1
    errs = b"".join(o[1] for o in outs).decode()
    assert "main: migrated" in errs and "main: up to date, nothing to do" in errs


def test_version_guard(tmp_path):
    r = run(["migrate", "--config", "/nonexistent"],
            env={"CHARTREUSE_EXPECTED_VERSION": "99.7.0"})
    assert r.rc == 1
    assert "99.7.0" in r.err_lines[0] and "major.minor" in r.err_lines[0]


def test_reference_environment_variables(pg, database, tmp_path):
    project = ap.linear(tmp_path / "project", 2)
    env = {"CHARTREUSE_ALEMBIC_URL": database,
           "CHARTREUSE_ALEMBIC_DIRECTORY_PATH": str(project.path),
           "CHARTREUSE_ALEMBIC_CONFIG_FILE_PATH": "alembic.ini",
           "CHARTREUSE_ALEMBIC_ALLOW_MIGRATION_FOR_EMPTY_DATABASE": "",
           "CHARTREUSE_ENABLE_STOP_PODS": "false",
           "CHARTREUSE_RELEASE_NAME": "demo"}
    r = run(["migrate"], env=env, timeout=120)
    # "" is false: an empty database with allow-empty off is left alone.
    assert r.rc == 0 and "left alone" in r.err.decode()
    env["CHARTREUSE_ALEMBIC_ALLOW_MIGRATION_FOR_EMPTY_DATABASE"] = "1"
    r = run(["migrate"], env=env, timeout=120)
    assert r.rc == 0, r.err.decode()
    assert stored(pg, dbname(database)) == ["lin0002"]
    no_secret(r)


def test_stop_pods_without_a_cluster_fails_clearly(database, tmp_path, alembic_log):
    project = ap.linear(tmp_path / "project", 1)
    wrapper, log = alembic_log
    r = migrate(write_config(tmp_path, [db_entry(project)], stopPods=True), urls=[database],
                alembic=wrapper, extra_env={"KUBECONFIG": str(tmp_path / "no-kubeconfig")})
    assert r.rc == 1
    err = r.err.decode()
    assert "no-kubeconfig" in err
    # Found before anything is stopped (preflight), with the setting for a database-only run.
    assert "main: FAILED (not run: a check before the migration failed)" in err
    assert "set stopPods: false" in err
    assert "chartreuse restore" not in err  # nothing was stopped, nothing to restore
    assert calls(log) == []


# --- Patroni (postgres-operator) ---------------------------------------------------------

def operator_setup(pg, db):
    """What the postgres-operator does for a prepared database: owner/writer/reader roles
    and default privileges."""
    for role in ("owner", "writer", "reader"):
        pg.psql(db, f'CREATE ROLE "{db}_{role}" NOLOGIN')
    pg.psql(db, f'GRANT CREATE, USAGE ON SCHEMA public TO "{db}_owner"')
    pg.psql(db, f'GRANT USAGE ON SCHEMA public TO "{db}_writer", "{db}_reader"')
    pg.psql(db, f'ALTER DEFAULT PRIVILEGES FOR ROLE "{db}_owner" IN SCHEMA public '
                f'GRANT INSERT, SELECT ON TABLES TO "{db}_writer"')
    pg.psql(db, f'ALTER DEFAULT PRIVILEGES FOR ROLE "{db}_owner" IN SCHEMA public '
                f'GRANT SELECT ON TABLES TO "{db}_reader"')


@pytest.fixture
def patroni_db(pg):
    name = "pat_" + uuid.uuid4().hex[:8]
    pg.create_database(name)
    yield name
    pg.drop_database(name)
    for role in ("owner", "writer", "reader"):
        pg.psql("postgres", f'DROP ROLE IF EXISTS "{name}_{role}"')


def test_patroni_waits_for_the_operator_then_passes_the_flag(pg, patroni_db, tmp_path,
                                                              alembic_log):
    import threading
    project = ap.linear(tmp_path / "project", 1)
    cfg = write_config(tmp_path, [db_entry(project, patroni=True, patroniWaitTimeout=30)])
    wrapper, log = alembic_log
    timer = threading.Timer(2.0, operator_setup, (pg, patroni_db))
    timer.start()
    try:
        r = migrate(cfg, urls=[pg.url(patroni_db)], alembic=wrapper)
    finally:
        timer.join()
    assert r.rc == 0, r.err.decode()
    assert calls(log) and "-x patroni_postgresql=yes" in calls(log)[0]
    # The probe left nothing behind.
    assert "chartreuse_patroni_probe" not in tables(pg, patroni_db)


def test_patroni_gives_up_at_the_deadline(pg, patroni_db, tmp_path, alembic_log):
    project = ap.linear(tmp_path / "project", 1)
    cfg = write_config(tmp_path, [db_entry(project, patroni=True, patroniWaitTimeout=2)])
    wrapper, log = alembic_log
    r = migrate(cfg, urls=[pg.url(patroni_db)], alembic=wrapper)
    assert r.rc == 1
    assert "not in place after 2 s" in r.err.decode()
    assert calls(log) == []


def test_reference_multi_database_file(pg, tmp_path):
    names = ["multi_" + uuid.uuid4().hex[:8] for _ in range(2)]
    for n in names:
        pg.create_database(n, owner="o_" + n, owner_password=HOSTILE_PASSWORD)
    try:
        a = ap.linear(tmp_path / "a", 2)
        b = ap.branches(tmp_path / "b")
        multi = {"databases": {
            "first": {"dialect": "postgresql", "user": "o_" + names[0],
                      "password": HOSTILE_PASSWORD, "host": pg.host, "port": pg.port,
                      "database": names[0], "alembic_directory_path": str(a.path),
                      "alembic_config_file_path": "alembic.ini",
                      "allow_migration_for_empty_database": True,
                      "additional_parameters": ""},
            "second": {"dialect": "postgresql", "user": "o_" + names[1],
                       "password": HOSTILE_PASSWORD, "host": pg.host, "port": pg.port,
                       "database": names[1], "alembic_directory_path": str(b.path)},
        }}
        path = tmp_path / "multi.yaml"
        path.write_text(yaml.safe_dump(multi))
        env = {"CHARTREUSE_MULTI_CONFIG_PATH": str(path), "CHARTREUSE_ENABLE_STOP_PODS": ""}
        r = run(["migrate"], env=env, timeout=120)
        assert r.rc == 0, r.err.decode()
        assert stored(pg, names[0]) == ["lin0002"] and stored(pg, names[1]) == ["a2", "b1"]
        no_secret(r)
        multi["databases"]["first"]["alembic_dir"] = "/x"
        path.write_text(yaml.safe_dump(multi))
        r = run(["migrate"], env=env, timeout=120)
        assert r.rc == 1 and "databases.first.alembic_dir: unknown key" in r.err_lines[0]
    finally:
        for n in names:
            pg.drop_database(n, owner="o_" + n)


def test_the_password_is_never_written_to_a_file_even_when_killed(pg, database, tmp_path):
    """Alembic gets its ini from memory (/dev/fd/N): a SIGKILL mid-migration leaves no
    file holding the password in TMPDIR or next to the project."""
    import signal
    import time
    specs = [("slow01", None, {"upgrade": 'op.execute("SELECT pg_sleep(3)")\n    '
                                         + ap.create_table("slow01")})]
    project = ap._project(tmp_path / "project", specs, ["slow01"])
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    cfg = write_config(tmp_path, [db_entry(project)])
    env = dict(os.environ, CHARTREUSE_DB_0_URL=database, TMPDIR=str(tmpdir))
    p = subprocess.Popen([BIN, "migrate", "--config", str(cfg)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    # Killed while Alembic runs the revision, as a container kill strikes: every process.
    deadline = time.monotonic() + 60
    running = False
    while not running and time.monotonic() < deadline and p.poll() is None:
        running = pg.psql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE "
                          "state = 'active' AND pid <> pg_backend_pid() AND query LIKE %s",
                          ("%pg_sleep(3)%",))[0][0] > 0
        time.sleep(0.05)
    assert running, "Alembic never reached the revision"
    os.killpg(p.pid, signal.SIGKILL)
    p.communicate(timeout=30)
    written = [f for f in list(tmpdir.rglob("*")) + list(project.path.rglob("*"))
               if f.is_file() and HOSTILE_PASSWORD.encode() in f.read_bytes()]
    assert written == []
    assert list(tmpdir.iterdir()) == []


def test_url_forms_sqlalchemy_users_write(pg, database, tmp_path):
    project = ap.linear(tmp_path / "project", 1)
    cfg = write_config(tmp_path, [db_entry(project)])
    for url in (database + "?sslmode=disable",
                database.replace("postgresql+psycopg2://", "postgresql://"),
                database.replace("postgresql+psycopg2://", "postgres://")):
        r = migrate(cfg, "--dry-run", urls=[url])
        assert r.rc == 0, r.err.decode()
        assert r.text.startswith("main: migration needed")
    r = migrate(cfg, "--dry-run", urls=[database + "?sslmode=require"])
    # The test server has no TLS: libpq's reason is shown, the URL masked.
    assert r.rc == 1 and r.text.startswith("main: FAILED")
    assert "SSL was required" in r.err.decode()
    no_secret(r)
