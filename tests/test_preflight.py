"""What `chartreuse migrate` checks before it stops anything (src/migrate.c: preflight):
a check that fails leaves every Deployment as it was (no write in the simulator's request
log), migrates nothing and says what and where; `--dry-run` runs the same checks and,
with `--detailed-exitcode`, tells a pipeline whether a migration is pending."""
import uuid

import pytest
import yaml

import alembic_projects as ap
from conftest import run
from test_pods import RELEASE, SCALES, migrated, release, migration  # noqa: F401 (fixtures)

WRITES = ("POST", "PUT", "PATCH", "DELETE")


def writes(k8s):
    """What changed something: a SelfSubjectAccessReview is a question, not a write."""
    return [f"{r.method} {r.path}" for r in k8s.request_log
            if r.method in WRITES and not r.path.endswith("/selfsubjectaccessreviews")]


def replicas(k8s):
    return {d["metadata"]["name"]: d["spec"]["replicas"] for d in k8s.objects("deployments")}


def break_script(path, line="    print 'the old syntax'\n"):
    """A statement in upgrade() that Python 3 cannot compile but that reads as plain code
    to a tokenizer: the failure Alembic would meet only when it imports the script."""
    text = path.read_text()
    at = text.index("def upgrade()")
    at = text.index("\n", at) + 1
    path.write_text(text[:at] + line + text[at:])
    return text[:at].count("\n") + 1


def test_a_revision_that_does_not_compile_fails_before_any_deployment_is_touched(
        release, migration, pg, tmp_path):
    k8s = release
    cfg, env, db = migration
    project = yaml.safe_load(cfg.read_text())["databases"][0]["alembicDirectory"]
    script = sorted((tmp_path / "project" / "migrations" / "versions").glob("*.py"))[-1]
    assert str(script).startswith(project)
    line = break_script(script)
    before = replicas(k8s)
    r = run(["migrate", "--config", str(cfg)], env=env, timeout=120)
    err = r.err.decode()
    assert r.rc == 1, err
    assert f"revision script {script}:{line}: " in err, err
    assert "nothing was stopped or changed" in err
    assert writes(k8s) == []
    assert replicas(k8s) == before == SCALES
    assert not migrated(pg, db)


def test_dry_run_finds_the_script_that_does_not_compile(release, migration, pg, tmp_path):
    k8s = release
    cfg, env, db = migration
    script = sorted((tmp_path / "project" / "migrations" / "versions").glob("*.py"))[0]
    break_script(script)
    r = run(["migrate", "--config", str(cfg), "--dry-run", "--detailed-exitcode"], env=env)
    assert r.rc == 1, r.err.decode()
    assert f"revision script {script}:" in r.err.decode()
    assert b"main: FAILED (not run: a check before the migration failed)" in r.out
    assert writes(k8s) == []


@pytest.mark.parametrize("python", ["#!/usr/bin/env python3", "#!{python}", "#! {python} -s"])
def test_the_scripts_are_compiled_by_the_python_that_runs_alembic(
        release, migration, pg, tmp_path, python):
    """A script valid only in a newer Python is refused when Alembic's interpreter (its
    `#!` line) is an older one: here a fake 'python' that compiles nothing."""
    import shutil
    cfg, env, db = migration
    fake = tmp_path / "bin" / "python2.7"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho \"$3: SyntaxError: not in this Python\"\nexit 1\n")
    fake.chmod(0o755)
    alembic = tmp_path / "bin" / "alembic"
    real = shutil.which("alembic", path="/usr/bin:/bin")
    body = open(real).read().split("\n", 1)[1]
    alembic.write_text(python.format(python=fake) + "\n" + body)
    alembic.chmod(0o755)
    if "env" in python:
        (tmp_path / "bin" / "python3").symlink_to(fake)
    env = dict(env, CHARTREUSE_ALEMBIC=str(alembic),
               PATH=f"{tmp_path / 'bin'}:/usr/bin:/bin")
    r = run(["migrate", "--config", str(cfg)], env=env, timeout=120)
    err = r.err.decode()
    assert r.rc == 1, err
    assert "SyntaxError: not in this Python (does not compile with " in err, err
    assert writes(release) == []
    assert not migrated(pg, db)


def test_a_role_that_cannot_write_the_version_table_fails_before_anything_stops(
        release, migration, pg):
    k8s = release
    cfg, env, db = migration
    project = yaml.safe_load(cfg.read_text())["databases"][0]["alembicDirectory"]
    r = run(["migrate", "--config", str(cfg)], env=env, timeout=120)   # at lin0002
    assert r.rc == 0, r.err.decode()
    ap.write_revisions(project, [("lin0003", "lin0002", {})],
                       versions=f"{project}/migrations/versions")
    role = "ro_" + uuid.uuid4().hex[:8]
    pg.psql("postgres", f"CREATE ROLE {role} LOGIN PASSWORD 'pw'")
    pg.psql(db, f"GRANT SELECT ON alembic_version TO {role}")
    try:
        k8s.request_log.clear()
        env = dict(env, CHARTREUSE_DB_0_URL=pg.url(db, user=role, password="pw"))
        r = run(["migrate", "--config", str(cfg)], env=env, timeout=120)
        err = r.err.decode()
        assert r.rc == 1, err
        assert (f'database main: the role cannot write Alembic\'s version table '
                f'"alembic_version": it lacks INSERT, UPDATE, DELETE') in err, err
        assert writes(k8s) == []
        assert pg.psql(db, "SELECT version_num FROM alembic_version") == [("lin0002",)]
    finally:
        pg.psql(db, f"REVOKE ALL ON alembic_version FROM {role}")
        pg.psql("postgres", f"DROP ROLE {role}")


def test_a_cluster_without_the_crd_is_told_how_to_install_it(pg, tmp_path):
    from k8s_sim import K8sSim
    sim = K8sSim(install_eds_crd=False).start()
    try:
        name = "pf_" + uuid.uuid4().hex[:8]
        pg.create_database(name)
        project = ap.linear(tmp_path / "project", 2)
        cfg = tmp_path / "config.yaml"
        cfg.write_text(yaml.safe_dump({
            "release": RELEASE, "namespace": "default", "stopPods": True,
            "databases": [{"name": "main", "alembicDirectory": str(project.path)}]}))
        env = {"CHARTREUSE_DB_0_URL": pg.url(name),
               "KUBECONFIG": str(sim.kubeconfig(tmp_path / "kubeconfig"))}
        r = run(["migrate", "--config", str(cfg)], env=env, timeout=120)
        err = r.err.decode()
        assert r.rc == 1, err
        lines = [ln for ln in err.splitlines() if "CRD is not installed" in ln]
        assert len(lines) == 1, err
        assert lines[0].endswith("install it with: kubectl apply -f \"$(helm env HELM_PLUGINS)"
                                 "/chartreuse/deploy/crd-expecteddeploymentscales.yaml\"")
        assert "set stopPods: false" in err
        assert writes(sim) == []
        assert not migrated(pg, name)
        r = run(["restore", "--release", RELEASE, "--namespace", "default"], env=env)
        assert r.rc != 0
        assert sum("CRD is not installed" in ln for ln in r.err.decode().splitlines()) == 1
        r = run(["status", RELEASE, "-n", "default", "--config", str(cfg)], env=env)
        assert r.rc != 0
        assert sum("CRD is not installed" in ln for ln in r.err.decode().splitlines()) == 1
        pg.drop_database(name)
    finally:
        sim.stop()


def test_no_reachable_cluster_names_the_setting_for_a_database_only_run(migration, pg,
                                                                         tmp_path):
    cfg, env, db = migration
    kubeconfig = tmp_path / "unreachable"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "unreachable-token"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    env = dict(env, KUBECONFIG=str(kubeconfig), CHARTREUSE_KUBE_REQUEST_TIMEOUT="1")
    r = run(["migrate", "--config", str(cfg)], env=env, timeout=120)
    err = r.err.decode()
    assert r.rc == 1, err
    assert "to migrate the databases without stopping them, set stopPods: false" in err
    assert not migrated(pg, db)


def test_detailed_exitcode_gates_a_pipeline(release, migration, pg):
    k8s = release
    cfg, env, db = migration
    args = ["migrate", "--config", str(cfg), "--dry-run", "--detailed-exitcode"]
    r = run(args, env=env)
    assert r.rc == 2, r.err.decode()
    assert b"main: migration needed (not applied: " in r.out
    r = run(["migrate", "--config", str(cfg), "--dry-run"], env=env)
    assert r.rc == 0, r.err.decode()
    assert writes(k8s) == [] and not migrated(pg, db)
    assert run(["migrate", "--config", str(cfg)], env=env, timeout=120).rc == 0
    r = run(args, env=env)
    assert r.rc == 0, r.err.decode()
    assert b"main: up to date, nothing to do" in r.out
    r = run(args, env=dict(env, CHARTREUSE_DB_0_URL=pg.url(db, password="wrong")))
    assert r.rc == 1


def test_detailed_exitcode_without_dry_run_is_an_error_that_is_not_a_pending_migration(
        migration):
    cfg, env, db = migration
    r = run(["migrate", "--config", str(cfg), "--detailed-exitcode"], env=env)
    assert r.rc == 1
    assert r.err.decode().strip() == ("chartreuse: error: migrate: --detailed-exitcode goes "
                                      "with --dry-run; see chartreuse migrate --help")
    r = run(["migrate", "--detailed-exitcode", "--dry-run", "--nosuch"], env=env)
    assert r.rc == 1


def test_a_call_the_role_does_not_allow_is_found_before_anything_stops(
        release, migration, pg, tmp_path):
    """The Job's account lacks one permission the stop needs (its Role edited by hand, or
    an admission webhook): SelfSubjectAccessReview finds it first, nothing is touched."""
    from rbac_helpers import job_kubeconfig
    k8s = release
    cfg, env, db = migration
    kubeconfig = job_kubeconfig(k8s, tmp_path / "job-kubeconfig", cfg)
    role = [o for o in k8s.objects("roles")][0]
    role["rules"] = [r for r in role["rules"] if r["resources"] != ["horizontalpodautoscalers"]]
    k8s.put(role)
    k8s.request_log.clear()
    r = run(["migrate", "--config", str(cfg)], env=dict(env, KUBECONFIG=str(kubeconfig)),
            timeout=120)
    err = r.err.decode()
    assert r.rc == 1, err
    for verb in ("list", "patch"):
        assert (f'this account may not {verb} "horizontalpodautoscalers" in API group '
                f'"autoscaling" in namespace default') in err, err
    assert "to pause and resume their HPAs" in err
    assert writes(k8s) == []
    assert not migrated(pg, db)


def test_with_the_role_chartreuse_renders_every_check_passes(release, migration, pg, tmp_path):
    from rbac_helpers import forbidden, job_kubeconfig
    k8s = release
    cfg, env, db = migration
    kubeconfig = job_kubeconfig(k8s, tmp_path / "job-kubeconfig", cfg)
    r = run(["migrate", "--config", str(cfg)], env=dict(env, KUBECONFIG=str(kubeconfig)),
            timeout=120)
    assert r.rc == 0, r.err.decode()
    assert "may not" not in r.err.decode() and "cannot ask" not in r.err.decode()
    assert forbidden(k8s) == []
    reviews = [x for x in k8s.request_log if x.path.endswith("/selfsubjectaccessreviews")]
    assert len(reviews) == 10  # every verb of every rule stopPods needs, asked once
