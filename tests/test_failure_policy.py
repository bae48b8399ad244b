"""What `chartreuse migrate` does with the release's pods when a migration does not finish:
Alembic fails, or chartreuse is asked to terminate. The pods come back only when every
database is verifiably at the revisions it had before; otherwise they stay stopped, the
stop stays recorded, and the exact restore command is printed.

Real PostgreSQL and Alembic, Kubernetes through the simulator (tests/k8s_sim)."""
import os
import signal
import subprocess
import time
import uuid

import pytest
import yaml

import alembic_projects as ap
from conftest import BIN, WRAPPER, migration_lock_key, run
from rbac_helpers import job_kubeconfig
from test_pods import BEHAVIOR, RELEASE, SCALES, release, scale_patches  # noqa: F401

RESTORE = f"chartreuse restore --release {RELEASE} --namespace default"


@pytest.fixture
def database(pg):
    name = "policy_" + uuid.uuid4().hex[:8]
    pg.create_database(name)
    yield name
    pg.drop_database(name)


def configure(k8s, pg, tmp_path, db, project):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({
        "release": RELEASE, "namespace": "default", "stopPods": True,
        "databases": [{"name": "main", "alembicDirectory": str(project.path)}]}))
    kubeconfig = job_kubeconfig(k8s, tmp_path / "kubeconfig", cfg)  # as the Job runs
    return cfg, {"CHARTREUSE_DB_0_URL": pg.url(db), "KUBECONFIG": str(kubeconfig)}


def per_migration_transactions(project):
    """Alembic commits each revision on its own: a failure keeps what went before."""
    env_py = project.path / "migrations" / "env.py"
    env_py.write_text(env_py.read_text().replace(
        "context.configure(connection=connection, **options)",
        "context.configure(connection=connection, transaction_per_migration=True, "
        "**options)"))
    return project


def replicas(k8s):
    return {n: k8s.get("deployments", n)["spec"]["replicas"] for n in SCALES}


def stopped_marks(k8s):
    return {n for n in SCALES if "chartreuse.wiremind.io/stopped" in
            k8s.get("deployments", n)["metadata"].get("annotations", {})}


def stored(pg, db):
    try:
        return sorted(r[0] for r in pg.psql(db, "SELECT version_num FROM alembic_version"))
    except Exception:  # no version table: nothing stored
        return []


def test_failure_that_changed_nothing_brings_the_pods_back(release, pg, tmp_path, database):
    k8s = release
    project = ap.failing(tmp_path / "project")  # one transaction: the failure rolls back
    cfg, env = configure(k8s, pg, tmp_path, database, project)
    r = run(["migrate", "--config", str(cfg)], env=env, timeout=120)
    err = r.err.decode()
    assert r.rc == 1
    assert "FAILED (alembic upgrade failed at revision bad03" in err
    assert "unchanged by the failed upgrade" in err
    assert stored(pg, database) == []
    # They were stopped, then started again, HPAs and all.
    assert scaled_to_zero(k8s) == set(SCALES), "every Deployment was scaled down"
    assert replicas(k8s) == SCALES
    assert stopped_marks(k8s) == set()
    assert k8s.get("horizontalpodautoscalers", "api")["spec"]["behavior"] == BEHAVIOR
    assert RESTORE not in err


def scaled_to_zero(k8s):
    """The Deployments a scale call brought to 0."""
    return {name for name, replicas, _ in scale_patches(k8s) if replicas == 0}


def test_failure_that_changed_the_database_leaves_the_pods_stopped(release, pg, tmp_path,
                                                                    database):
    k8s = release
    project = per_migration_transactions(ap.failing(tmp_path / "project"))
    cfg, env = configure(k8s, pg, tmp_path, database, project)
    r = run(["migrate", "--config", str(cfg)], env=env, timeout=120)
    err = r.err.decode()
    assert r.rc == 1
    assert stored(pg, database) == ["ok02"]  # ok01 and ok02 were committed
    assert "the failed upgrade changed it: it was at (none), it is at ok02" in err
    assert "the pods stay stopped" in err and RESTORE in err
    # Down, and recorded as stopped by chartreuse, so that the printed command heals it.
    assert replicas(k8s) == {n: 0 for n in SCALES}
    assert stopped_marks(k8s) == set(SCALES)
    paused = k8s.get("horizontalpodautoscalers", "api")["spec"]["behavior"]
    assert paused["scaleUp"]["selectPolicy"] == "Disabled"
    r = run(RESTORE.split()[1:], env={"KUBECONFIG": env["KUBECONFIG"]}, timeout=60)
    assert r.rc == 0, r.err.decode()
    assert replicas(k8s) == SCALES and stopped_marks(k8s) == set()
    assert k8s.get("horizontalpodautoscalers", "api")["spec"]["behavior"] == BEHAVIOR


def sleeping_project(root, seconds=30):
    """One revision that sleeps in the database before creating its table."""
    specs = [("slow01", None, {"upgrade": f'op.execute("SELECT pg_sleep({seconds})")\n    '
                                          + ap.create_table("slow01")})]
    return ap._project(root, specs, ["slow01"])


def start(cfg, env):
    return subprocess.Popen(WRAPPER + [BIN, "migrate", "--config", str(cfg)],
                            env=dict(os.environ, **env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def wait_until(predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def alembic_running(pg, db):
    rows = pg.psql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                   "AND query LIKE %s", (db, "%pg_sleep%"))
    return rows[0][0] > 0


def test_sigterm_during_alembic_is_forwarded_and_the_pods_come_back(release, pg, tmp_path,
                                                                     database):
    k8s = release
    cfg, env = configure(k8s, pg, tmp_path, database, sleeping_project(tmp_path / "project"))
    p = start(cfg, env)
    assert wait_until(lambda: alembic_running(pg, database)), "alembic never started"
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    err = err.decode()
    assert p.returncode == 128 + signal.SIGTERM, err
    assert "alembic upgrade interrupted by signal 15" in err
    # Alembic got the signal and is gone: its session ended, its transaction rolled back.
    assert wait_until(lambda: not alembic_running(pg, database), timeout=10)
    assert stored(pg, database) == []
    assert replicas(k8s) == SCALES and stopped_marks(k8s) == set()


def test_sigterm_while_the_pods_stop_brings_back_what_was_stopped(release, pg, tmp_path,
                                                                  database):
    k8s = release
    k8s.pod_stop_delay = 30.0  # the first group's pods take their time to go
    cfg, env = configure(k8s, pg, tmp_path, database, ap.linear(tmp_path / "project", 1))
    p = start(cfg, env)
    assert wait_until(lambda: k8s.get("deployments", "api")["spec"]["replicas"] == 0)
    k8s.pod_stop_delay = 0.2
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    err = err.decode()
    assert p.returncode == 128 + signal.SIGTERM, err
    assert "interrupted while" in err
    assert "main: FAILED (not run: the pods could not be stopped)" in err
    assert stored(pg, database) == []  # Alembic never ran
    assert replicas(k8s) == SCALES and stopped_marks(k8s) == set()
    # The lower groups were never touched.
    assert "worker" not in scaled_to_zero(k8s)


def test_sigterm_while_waiting_for_the_lock_changes_nothing(release, pg, tmp_path, database):
    k8s = release
    cfg, env = configure(k8s, pg, tmp_path, database, ap.linear(tmp_path / "project", 1))
    holder = pg.connect(database)  # another migration of this database
    try:
        holder.autocommit = True
        holder.cursor().execute("SELECT pg_advisory_lock(%s)", (migration_lock_key(),))
        k8s.request_log.clear()
        p = start(cfg, env)
        assert wait_until(lambda: pg.psql("postgres", "SELECT count(*) FROM pg_stat_activity "
                                          "WHERE application_name = 'chartreuse'")[0][0] > 0)
        time.sleep(0.5)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
    finally:
        holder.close()
    err = err.decode()
    assert p.returncode == 128 + signal.SIGTERM, err
    assert "interrupted while waiting for another migration's lock" in err
    # Said at once, not only after the first progress period.
    assert "database main: another migration holds its lock; waiting for it to finish " \
           "(at most 1800 s)" in err
    assert stored(pg, database) == []
    assert not [r for r in k8s.request_log if r.method != "GET"]
    assert replicas(k8s) == SCALES
