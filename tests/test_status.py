"""`chartreuse status`: the release's databases (real PostgreSQL, real Alembic projects),
Deployments, HPAs and Jobs (the simulated API server), shown as a table, JSON and YAML,
and the exit status scripts rely on."""
import json
import re
import time
import uuid
from functools import partial

import pytest
import yaml

import alembic_projects as ap
import k8s_objects
from conftest import plugin_source, run

RELEASE = "shop"
SCALES = {"api": 2, "web": 1, "worker": 1}
PRIORITY = {"api": 10, "web": 10, "worker": 0}
HOSTILE_PASSWORD = "st@tus:/?#%'\" pw"


deployment = partial(k8s_objects.deployment, release=RELEASE)
eds = partial(k8s_objects.eds, release=RELEASE)


def hpa(target):
    return k8s_objects.hpa(target, name=f"{target}-hpa")


def job(name, component="migration", outcome="succeeded", migration="chartreuse"):
    status = {"succeeded": {"succeeded": 1, "conditions": [
                  {"type": "Complete", "status": "True"}]},
              "failed": {"failed": 1, "conditions": [
                  {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                   "message": "Job has reached the specified backoff limit"}]},
              "running": {"active": 1}}[outcome]
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": "default",
                         "labels": {"app.kubernetes.io/name": "chartreuse",
                                    "app.kubernetes.io/instance": RELEASE,
                                    "app.kubernetes.io/component": component,
                                    "chartreuse.wiremind.io/migration": migration}},
            # the simulator's Job controller runs an unfinished Job's Pod: keep it running
            "spec": {"backoffLimit": 0, "template": {
                "metadata": {"annotations": {"sim.chartreuse.test/run-delay": "3600"}},
                "spec": {"restartPolicy": "Never",
                         "containers": [{"name": "m", "image": "x"}]}}},
            "status": status}


def ready(k8s, names=SCALES):
    def all_ready():
        for n in names:
            d = k8s.get("deployments", n)
            want = d["spec"]["replicas"]
            if d.get("status", {}).get("readyReplicas", 0) != want:
                return False
        return True
    k8s.wait_for(all_ready, timeout=15, what="Deployments ready")


@pytest.fixture
def release(k8s):
    for name, scale in SCALES.items():
        k8s.put(deployment(name, scale))
        # "worker" carries only the old label: both are looked up, as migrate does.
        k8s.put(eds(name, scale, priority=PRIORITY[name],
                    label="release" if name == "worker" else "app.kubernetes.io/instance"))
    k8s.put(hpa("api"))
    ready(k8s)
    return k8s


class Setup:
    """A database with an owner whose password is hostile, an Alembic project, a
    ChartreuseConfig file and the environment `status` and `migrate` need."""

    def __init__(self, pg, tmp_path, k8s, project=ap.linear):
        self.pg = pg
        self.db = "st_" + uuid.uuid4().hex[:10]
        self.owner = "own_" + self.db
        pg.create_database(self.db, owner=self.owner, owner_password=HOSTILE_PASSWORD)
        self.url = pg.url(self.db, user=self.owner, password=HOSTILE_PASSWORD)
        self.project = project(tmp_path / "project")
        self.kubeconfig = k8s.kubeconfig(tmp_path / "kubeconfig")
        self.config = tmp_path / "config.yaml"
        self.write_config()
        self.env = {"CHARTREUSE_DB_0_URL": self.url, "KUBECONFIG": str(self.kubeconfig)}

    def write_config(self, **top):
        cfg = {"release": RELEASE, "namespace": "default", "stopPods": False, **top,
               "databases": [{"name": "main", "alembicDirectory": str(self.project.path)}]}
        self.config.write_text(yaml.safe_dump(cfg))

    def status(self, *args, env=None, **kw):
        return run(["status", "--config", str(self.config), *args],
                   env={**self.env, **(env or {})}, timeout=120, **kw)

    def json(self, *args, **kw):
        r = self.status("-o", "json", *args, **kw)
        return r, json.loads(r.out)

    def migrate(self):
        r = run(["migrate", "--config", str(self.config)], env=self.env, timeout=180)
        assert r.rc == 0, r.err.decode()

    def store(self, *revisions):
        """The version table as a partial migration leaves it."""
        self.pg.psql(self.db, "CREATE TABLE alembic_version (version_num varchar(32) "
                              "PRIMARY KEY)")
        self.pg.psql(self.db, f'ALTER TABLE alembic_version OWNER TO "{self.owner}"')
        for rev in revisions:
            self.pg.psql(self.db, "INSERT INTO alembic_version VALUES (%s)", (rev,))

    def drop(self):
        self.pg.drop_database(self.db, owner=self.owner)


@pytest.fixture
def setup(pg, tmp_path, k8s):
    s = Setup(pg, tmp_path, k8s)
    yield s
    s.drop()


def no_secret(result):
    from pgserver import quote_url_part
    for stream in (result.out, result.err):
        text = stream.decode(errors="replace")
        assert HOSTILE_PASSWORD not in text
        assert quote_url_part(HOSTILE_PASSWORD) not in text  # as it stands in the URL
        assert "st@tus" not in text


def row(result, first):
    """A table row, cut at the column gaps (two spaces or more)."""
    line = next(l for l in result.text.splitlines() if l.startswith(first + " "))
    return re.split(r"\s{2,}", line.strip())


def by_name(items):
    return {i["name"]: i for i in items}


# --- everything fine ---------------------------------------------------------------------

def test_at_head_and_running_exits_0(release, setup):
    setup.migrate()
    r = setup.status()
    assert r.rc == 0, r.text + r.err.decode()
    lines = r.text.splitlines()
    assert row(r, "main") == ["main", "up-to-date", "lin0003", "lin0003", "(none)"]
    assert row(r, "api") == ["api", "10", "2", "2", "2", "api-hpa", "running"]
    assert row(r, "worker") == ["worker", "0", "1", "1", "1", "-", "running"]
    assert "Problems:" not in r.text
    assert lines[-1] == "Status: everything at its heads and running (exit 0)"
    no_secret(r)

    r, data = setup.json()
    assert r.rc == 0 and data["verdict"] == "ok" and data["exitCode"] == 0
    assert data["problems"] == []
    db = data["databases"][0]
    assert db["state"] == "up-to-date" and db["ok"] is True
    assert db["storedRevisions"] == ["lin0003"] and db["heads"] == ["lin0003"]
    assert db["notApplied"] == [] and db["headsFrom"] == "scripts"
    assert "***" in db["url"] and setup.db in db["url"]
    deps = by_name(data["deployments"])
    assert list(deps) == ["api", "web", "worker"]  # by priority, then name
    assert deps["api"]["hpas"] == [{"name": "api-hpa", "paused": False}]
    for name, scale in SCALES.items():
        d = deps[name]
        assert (d["expectedScale"], d["replicas"], d["readyReplicas"]) == (scale,) * 3
        assert d["priority"] == PRIORITY[name]
        assert d["state"] == "running" and not d["stoppedByChartreuse"]
        assert not d["hpaPaused"]


def test_status_changes_nothing(release, setup):
    setup.store("lin0001")
    release.request_log.clear()
    r = setup.status()
    assert r.rc == 1
    assert {x.method for x in release.request_log} == {"GET"}
    rows = setup.pg.psql(setup.db, "SELECT version_num FROM alembic_version")
    assert rows == [("lin0001",)]


# --- databases ---------------------------------------------------------------------------

def test_migration_needed_lists_what_is_not_applied(release, setup):
    setup.store("lin0001")
    r, data = setup.json()
    assert r.rc == 1
    db = data["databases"][0]
    assert db["state"] == "migration-needed" and db["ok"] is False
    assert db["storedRevisions"] == ["lin0001"]
    assert db["notApplied"] == ["lin0002", "lin0003"] and db["notAppliedComplete"] is True
    assert data["verdict"] == "attention" and data["exitCode"] == 1
    assert data["problems"] == [
        "database main: migration needed: not applied lin0002, lin0003"]
    table = setup.status()
    assert table.rc == 1
    assert row(table, "main") == ["main", "migration-needed", "lin0001", "lin0003",
                                  "lin0002, lin0003"]
    no_secret(r)
    no_secret(table)


def test_empty_database_left_alone_by_rule_is_ok(release, setup):
    cfg = yaml.safe_load(setup.config.read_text())
    cfg["databases"] = [{"name": "main", "alembicDirectory": str(setup.project.path),
                         "allowMigrationFromEmptyDatabase": False}]
    setup.config.write_text(yaml.safe_dump(cfg))
    r, data = setup.json()
    assert r.rc == 0, data["problems"]
    db = data["databases"][0]
    assert db["state"] == "empty-left-alone" and db["storedRevisions"] == []


def test_revision_unknown_to_the_scripts(release, setup):
    setup.store("feedbeef")
    r, data = setup.json()
    assert r.rc == 1
    db = data["databases"][0]
    assert db["state"] == "unknown-revision" and db["storedRevisions"] == ["feedbeef"]
    assert db["notApplied"] is None
    assert "feedbeef" in db["error"]


def test_unreachable_database_is_exit_3_and_masked(release, setup):
    from pgserver import free_port
    url = setup.pg.url(setup.db, user=setup.owner, password=HOSTILE_PASSWORD,
                       port=free_port())
    r, data = setup.json(env={"CHARTREUSE_DB_0_URL": url})
    assert r.rc == 3
    db = data["databases"][0]
    assert db["state"] == "unreachable" and db["ok"] is False
    assert db["storedRevisions"] is None
    assert db["heads"] == ["lin0003"]  # the scripts were still read
    assert "cannot connect" in db["error"] and "***" in db["error"]
    assert data["verdict"] == "unknown" and data["exitCode"] == 3
    assert len(data["problems"]) == 1 and data["problems"][0].startswith("database main")
    # The Deployments were still read.
    assert {d["state"] for d in data["deployments"]} == {"running"}
    no_secret(r)
    table = setup.status(env={"CHARTREUSE_DB_0_URL": url})
    assert table.rc == 3 and "unknown: part of the state could not be read (exit 3)" in \
        table.text
    no_secret(table)
    assert any("cannot connect" in l for l in table.err_lines)


def test_a_known_problem_outweighs_an_unreadable_part(release, setup):
    from pgserver import free_port
    url = setup.pg.url(setup.db, user=setup.owner, password=HOSTILE_PASSWORD,
                       port=free_port())
    release.patch("deployments", "web", {"metadata": {"annotations": {
        "chartreuse.wiremind.io/stopped": "true"}}})
    r, data = setup.json(env={"CHARTREUSE_DB_0_URL": url})
    assert r.rc == 1 and data["verdict"] == "attention"
    assert len(data["problems"]) == 2


def test_database_without_url(release, setup):
    setup.migrate()
    r, data = setup.json(env={"CHARTREUSE_DB_0_URL": ""})
    assert r.rc == 3
    db = data["databases"][0]
    assert db["state"] == "unreadable" and db["url"] is None
    assert "CHARTREUSE_DB_0_URL" in db["error"]
    assert data["problems"] == [db["error"]]  # it names the database already


def test_unreadable_project_still_shows_what_is_stored(release, setup, tmp_path):
    setup.store("lin0001")
    cfg = yaml.safe_load(setup.config.read_text())
    cfg["databases"][0]["alembicDirectory"] = str(tmp_path / "nowhere")
    setup.config.write_text(yaml.safe_dump(cfg))
    r, data = setup.json()
    assert r.rc == 3
    db = data["databases"][0]
    assert db["state"] == "unreadable" and db["storedRevisions"] == ["lin0001"]
    assert db["heads"] is None and db["notApplied"] is None
    assert "nowhere" in db["error"]


def test_heads_from_alembic_when_the_scripts_are_uncertain(release, pg, tmp_path, k8s):
    s = Setup(pg, tmp_path, k8s, project=ap.computed)
    try:
        s.store("lin0002")
        r, data = s.json()
        assert r.rc == 1, r.err.decode()
        db = data["databases"][0]
        assert db["headsFrom"] == "alembic heads" and db["heads"] == ["comp03"]
        # without the graph only the head is known to be missing, and status says so
        assert db["notApplied"] == ["comp03"] and db["notAppliedComplete"] is False
        assert data["problems"] == [
            "database main: migration needed: not applied at least comp03 (the heads not "
            "stored; which revisions before them are missing is unknown: the scripts were "
            "not read natively)"]
        assert row(s.status(), "main")[4] == "at least comp03"
        no_secret(r)
    finally:
        s.drop()


def test_settings_from_the_reference_environment_variables(release, setup):
    setup.store("lin0001")
    env = {"CHARTREUSE_ALEMBIC_URL": setup.url,
           "CHARTREUSE_ALEMBIC_DIRECTORY_PATH": str(setup.project.path),
           "CHARTREUSE_RELEASE_NAME": RELEASE, "KUBECONFIG": str(setup.kubeconfig)}
    r = run(["status", "-o", "json"], env=env, timeout=120)
    data = json.loads(r.out)
    assert r.rc == 1 and data["release"] == RELEASE
    assert data["databases"][0]["notApplied"] == ["lin0002", "lin0003"]
    assert len(data["deployments"]) == 3
    no_secret(r)


def test_no_database_configured_is_nothing_checked_exit_3(release, tmp_path):
    """Issue 10: nothing checked is no verdict (it was exit 0 and "everything at its
    heads"): exit 3, and the note says why."""
    kc = release.kubeconfig(tmp_path / "kc")
    r = run(["status", RELEASE, "-o", "json"], env={"KUBECONFIG": str(kc)})
    data = json.loads(r.out)
    assert r.rc == 3, data
    assert data["verdict"] == "unknown" and data["exitCode"] == 3
    assert data["databases"] is None
    assert any("no database configured" in n for n in data["notes"])
    assert data["problems"] == ["databases: none checked (none configured)"]
    assert {d["state"] for d in data["deployments"]} == {"running"}  # still read
    table = run(["status", RELEASE], env={"KUBECONFIG": str(kc)})
    assert table.rc == 3 and "Databases: no database configured" in table.text
    assert "everything at its heads" not in table.text


# --- Deployments -------------------------------------------------------------------------

def test_stopped_and_paused_until_restore(release, setup):
    """A before-deployment upgrade leaves the pods stopped (chartreuse's marks on them)
    until the deployment and the restore Job: status says so and how to bring them back;
    after `restore` everything is running again."""
    setup.write_config(stopPods=True, upgradeBeforeDeployment=True)
    setup.migrate()
    r, data = setup.json()
    assert r.rc == 1
    assert data["databases"][0]["state"] == "up-to-date"
    deps = by_name(data["deployments"])
    for name in SCALES:
        assert deps[name]["stoppedByChartreuse"] is True
        assert deps[name]["state"] == "stopped" and deps[name]["replicas"] == 0
    assert deps["api"]["hpaPaused"] is True
    assert deps["api"]["hpas"] == [{"name": "api-hpa", "paused": True}]
    assert not deps["web"]["hpaPaused"]
    assert len(data["problems"]) == 3
    for p in data["problems"]:
        assert "is stopped by chartreuse" in p
        assert f"chartreuse restore --release {RELEASE} --namespace default" in p
    table = setup.status()
    assert table.rc == 1 and "api-hpa (paused)" in table.text
    no_secret(r)

    restore = run(["restore", "--release", RELEASE, "--namespace", "default"],
                  env={"KUBECONFIG": str(setup.kubeconfig)})
    assert restore.rc == 0, restore.err.decode()
    ready(release)
    r, data = setup.json()
    assert r.rc == 0, data["problems"]
    assert {d["state"] for d in data["deployments"]} == {"running"}
    assert not any(d["hpaPaused"] or d["stoppedByChartreuse"] for d in data["deployments"])


def test_hpa_paused_alone(release, setup):
    setup.migrate()
    release.patch("horizontalpodautoscalers", "api-hpa", {"metadata": {"annotations": {
        "chartreuse.wiremind.io/hpa-behavior-before": "null"}}})
    r, data = setup.json()
    assert r.rc == 1
    api = by_name(data["deployments"])["api"]
    assert api["state"] == "hpa-paused" and api["hpaPaused"] is True
    assert not api["stoppedByChartreuse"]
    assert len(data["problems"]) == 1 and "api-hpa" in data["problems"][0]


def test_missing_scaled_down_and_not_ready_deployments(release, setup):
    setup.migrate()
    release.put(eds("ghost", 1, priority=3))
    release.scale("deployments", "worker", 0)
    release.put(deployment("slow", 1, annotations={"sim.chartreuse.test/start-delay": "60"}))
    release.put(eds("slow", 1))
    release.settle()
    r, data = setup.json()
    assert r.rc == 1
    deps = by_name(data["deployments"])
    assert deps["ghost"]["state"] == "missing" and deps["ghost"]["exists"] is False
    assert deps["ghost"]["replicas"] is None
    assert deps["worker"]["state"] == "scaled-down" and deps["worker"]["replicas"] == 0
    assert deps["slow"]["state"] == "not-ready" and deps["slow"]["readyReplicas"] == 0
    assert deps["api"]["state"] == "running"
    assert len(data["problems"]) == 3
    assert list(deps)[:3] == ["api", "web", "ghost"]  # priority 10, 10, 3
    table = setup.status()
    assert table.rc == 1
    assert row(table, "ghost") == ["ghost", "3", "1", "-", "-", "-", "missing"]


def helm_release_secret(k8s, release=RELEASE, version=1):
    helm_release_secret_in(k8s, "default", release, version)


def helm_release_secret_in(k8s, namespace, release=RELEASE, version=1):
    """The record Helm's default storage driver keeps of a release revision."""
    k8s.put({"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
             "metadata": {"name": f"sh.helm.release.v1.{release}.v{version}",
                          "namespace": namespace,
                          "labels": {"owner": "helm", "name": release,
                                     "status": "deployed", "version": str(version)}},
             "data": {"release": "e30="}})


def test_no_expected_deployment_scale(k8s, setup):
    """A release Helm knows (its release Secret) but without ExpectedDeploymentScale: a
    note, not a failure. (Without the Secret it is no release: exit 4, below.)"""
    setup.migrate()
    helm_release_secret(k8s)
    r, data = setup.json()
    assert r.rc == 0
    assert data["deployments"] == []
    assert any("no ExpectedDeploymentScale" in n for n in data["notes"])


# --- Jobs ----------------------------------------------------------------------------------

def test_the_newest_migration_job_decides(release, setup):
    setup.migrate()
    release.put(job("shop-chartreuse-upgrade", outcome="succeeded"))
    release.put(job("shop-chartreuse-restore", component="restore", outcome="succeeded"))
    r, data = setup.json()
    assert r.rc == 0, data["problems"]
    assert [(j["name"], j["outcome"]) for j in data["jobs"]] == [
        ("shop-chartreuse-upgrade", "succeeded"), ("shop-chartreuse-restore", "succeeded")]

    time.sleep(1.1)  # creationTimestamp has a one-second resolution
    release.put(job("shop-chartreuse-install", outcome="failed"))
    r, data = setup.json()
    assert r.rc == 1
    migration = [j for j in data["jobs"] if j["component"] == "migration"]
    assert len(migration) == 1
    j = migration[0]
    assert j["name"] == "shop-chartreuse-install" and j["outcome"] == "failed"
    assert j["detail"] == "BackoffLimitExceeded: Job has reached the specified backoff limit"
    assert data["problems"] == ["Job shop-chartreuse-install (migration) failed: "
                                "BackoffLimitExceeded: Job has reached the specified "
                                "backoff limit"]
    table = setup.status()
    assert table.rc == 1 and "failed (BackoffLimitExceeded" in table.text

    time.sleep(1.1)
    release.delete("jobs", "shop-chartreuse-upgrade")  # Helm's before-hook-creation
    release.put(job("shop-chartreuse-upgrade", outcome="running"))
    r, data = setup.json()
    assert r.rc == 1
    assert [j["outcome"] for j in data["jobs"] if j["component"] == "migration"] == \
        ["running"]
    assert data["problems"] == ["Job shop-chartreuse-upgrade (migration) is still running"]


def test_jobs_of_other_releases_are_ignored(release, setup):
    setup.migrate()
    other = job("other-chartreuse-upgrade", outcome="failed")
    other["metadata"]["labels"]["app.kubernetes.io/instance"] = "other"
    release.put(other)
    r, data = setup.json()
    assert r.rc == 0 and data["jobs"] == []
    assert any("no migration Job" in n for n in data["notes"])


# --- formats, options, errors ------------------------------------------------------------

def test_yaml_is_the_json_data(release, setup):
    setup.store("lin0001")
    release.put(job("shop-chartreuse-upgrade", outcome="failed"))
    r_json, data = setup.json()
    r_yaml = setup.status("-o", "yaml")
    assert r_yaml.rc == r_json.rc == 1
    assert yaml.safe_load(r_yaml.out) == data
    for args, same in ((["--output=yaml"], r_yaml), (["-ojson"], r_json)):
        again = setup.status(*args)
        assert again.rc == 1 and again.out == same.out
    no_secret(r_yaml)


def test_release_argument_overrides_the_config(release, setup):
    """Issue 10: a release that does not exist is exit 4 (it was exit 0 with nothing to
    show); once Helm has a record of it, it is shown."""
    setup.migrate()
    r = setup.status("other", "-o", "json")
    assert r.rc == 4 and r.out == b""
    helm_release_secret(release, "other")
    r, data = setup.json("other")
    assert r.rc == 0 and data["release"] == "other"
    assert data["deployments"] == [] and data["jobs"] == []


def test_namespace_from_helm_and_from_the_option(release, setup):
    setup.migrate()
    r = setup.status(env={"HELM_NAMESPACE": "elsewhere"})  # issue 10: no such namespace
    assert r.rc == 4 and r.out == b""
    assert r.err_lines == ["chartreuse: error: status: no namespace named elsewhere "
                           "(release shop): check -n/--namespace and --kube-context"]
    release.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "elsewhere"}})
    helm_release_secret_in(release, "elsewhere")
    r, data = setup.json(env={"HELM_NAMESPACE": "elsewhere"})
    assert r.rc == 0 and data["namespace"] == "elsewhere" and data["deployments"] == []
    r, data = setup.json("-n", "default", env={"HELM_NAMESPACE": "elsewhere"})
    assert r.rc == 0 and data["namespace"] == "default" and len(data["deployments"]) == 3


def test_kube_context_option(release, setup, tmp_path):
    setup.migrate()
    kc = release.kubeconfig(tmp_path / "kc-ctx", context="sim-b")
    r = setup.status("--kubeconfig", str(kc), "--kube-context", "nope")
    assert r.rc == 3 and any("nope" in l for l in r.err_lines)
    r, data = setup.json("--kubeconfig", str(kc), "--kube-context", "sim-b")
    assert r.rc == 0 and len(data["deployments"]) == 3
    r, data = setup.json("--kubeconfig", str(kc), env={"HELM_KUBECONTEXT": "sim-b"})
    assert r.rc == 0


def test_kubeconfig_as_kubectl_writes_it_in_json(release, setup, tmp_path):
    """`kubectl config view --flatten -o json` (every value double-quoted): status and
    restore read it as the YAML kubeconfig it came from."""
    from conftest import REPO
    import subprocess
    setup.migrate()
    flat = subprocess.run([str(REPO / ".cache" / "helm" / "v4" / "kubectl"), "config", "view",
                           "--flatten", "-o", "json", "--kubeconfig", str(setup.kubeconfig)],
                          capture_output=True, text=True, check=True).stdout
    kc = tmp_path / "kubeconfig.json"
    kc.write_text(flat)
    r, data = setup.json("--kubeconfig", str(kc))
    assert r.rc == 0, r.err_lines
    assert len(data["deployments"]) == 3
    r = run(["restore", "--release", RELEASE, "--namespace", "default", "--kubeconfig",
             str(kc)], timeout=120)
    assert r.rc == 0, r.err_lines


def test_unreachable_cluster_is_exit_3(setup, tmp_path, k8s):
    setup.migrate()
    from pgserver import free_port
    kc = k8s.kubeconfig(tmp_path / "kc-dead", server=f"https://127.0.0.1:{free_port()}")
    r, data = setup.json(env={"KUBECONFIG": str(kc)})
    assert r.rc == 3
    assert data["deployments"] is None and data["jobs"] is None
    assert data["kubernetesError"] and data["databases"][0]["state"] == "up-to-date"
    assert data["problems"][0].startswith("kubernetes: ")
    table = setup.status(env={"KUBECONFIG": str(kc)})
    assert table.rc == 3 and "Kubernetes: not read:" in table.text


@pytest.mark.parametrize("args", [[], ["-o", "xml"], ["a", "b"], ["--bogus"],
                                  ["--connect-timeout", "x"]])
def test_bad_usage_is_exit_2(args, tmp_path):
    env = {"CHARTREUSE_RELEASE_NAME": "", "KUBECONFIG": str(tmp_path / "none")}
    r = run(["status", *args], env=env)
    assert r.rc == 2 and r.out == b""
    assert len(r.err_lines) == 1 and r.err_lines[0].startswith("chartreuse: error: status")


def test_bad_config_is_exit_2(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("databases:\n  - name: main\n    prot: 1\n")
    r = run(["status", "x", "--config", str(cfg)])
    assert r.rc == 2 and r.out == b"" and "prot: unknown key" in r.err_lines[0]


def test_help():
    r = run(["status", "--help"])
    assert r.rc == 0 and "Exit status:" in r.text and "  3  " in r.text


# --- through Helm --------------------------------------------------------------------------

@pytest.mark.helm
@pytest.mark.parametrize("major", [3, 4], ids=["helm3", "helm4"])
def test_helm_chartreuse_status_takes_helms_namespace_and_context(major, release, tmp_path):
    """Helm keeps -n, --kube-context and --kubeconfig for itself and hands the plugin
    HELM_NAMESPACE, HELM_KUBECONTEXT and KUBECONFIG instead."""
    from test_helm import Helm
    h = Helm(major, tmp_path / "helm")
    h.env.pop("KUBECONFIG", None)
    h.run("plugin", "install", str(plugin_source()))
    kc = release.kubeconfig(tmp_path / "kc", context="sim-ctx", namespace="elsewhere")
    p = h.run("chartreuse", "status", RELEASE, "-n", "default", "--kube-context", "sim-ctx",
              "--kubeconfig", str(kc), "-o", "json", check=False)
    data = json.loads(p.stdout)
    # issue 10: no database configured is nothing checked, exit 3 (it was "ok", exit 0)
    assert p.returncode == 3 and data["verdict"] == "unknown"
    assert data["namespace"] == "default"
    assert {d["state"] for d in data["deployments"]} == {"running"}
    assert [d["name"] for d in data["deployments"]] == ["api", "web", "worker"]
    # Without -n, Helm passes the context's namespace, which does not exist (issue 10:
    # exit 4 with one line, where it was exit 0 with an empty report).
    p = h.run("chartreuse", "status", RELEASE, "--kubeconfig", str(kc), "-o", "json",
              check=False)
    assert p.returncode == 4 and p.stdout == ""
    assert "no namespace named elsewhere" in p.stderr
    release.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "elsewhere"}})
    helm_release_secret_in(release, "elsewhere")
    p = h.run("chartreuse", "status", RELEASE, "--kubeconfig", str(kc), "-o", "json",
              check=False)
    data = json.loads(p.stdout)
    assert data["namespace"] == "elsewhere" and data["deployments"] == []
