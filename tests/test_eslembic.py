"""`chartreuse migrate` with eslembic (Elasticsearch): the decision from `eslembic current`,
`eslembic upgrade head` while the pods are stopped, and the follow-up Job
`<release>-chartreuse-migrate` created through the API (refused while one runs, a finished
one deleted first). Real PostgreSQL and Alembic for the database side, the simulated API
server (tests/k8s_sim) for Kubernetes, and tests/eslembic_standin.py for eslembic: neither
Elasticsearch nor the real eslembic can be obtained on these machines."""
import base64
import json
import threading
import time
import uuid
from functools import partial
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

import alembic_projects as ap
import eslembic_standin
from rbac_helpers import job_kubeconfig
import k8s_objects
from conftest import injected, post_render, run

RELEASE = "shop"
JOB = f"{RELEASE}-chartreuse-migrate"
SCALES = {"api": 2, "worker": 1}
ES_PASSWORD = "es: p@ss/w#rd"
ES_URL = f"http://elastic:{quote(ES_PASSWORD, safe='')}@es.example:9200"
STANDIN = Path(__file__).resolve().parent / "eslembic_standin.py"
IMAGE = {"repository": "registry.example/shop", "tag": "2.0", "pullSecret": "regcred"}


deployment = partial(k8s_objects.deployment, release=RELEASE)
eds = partial(k8s_objects.eds, release=RELEASE)


def job(status, finalizers=None):
    """A follow-up Job as an earlier migration left it."""
    meta = {"name": JOB, "namespace": "default",
            "labels": {"app.kubernetes.io/instance": RELEASE}}
    if finalizers:
        meta["finalizers"] = finalizers
    # the simulator's Job controller runs an unfinished Job's Pod: keep it running (an
    # unfinished Job stays unfinished however slow the run, e.g. under valgrind)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": {"backoffLimit": 0, "template": {
                "metadata": {"annotations": {"sim.chartreuse.test/run-delay": "3600"}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "eslembic-migrate", "image": "old:1",
                                    "command": ["eslembic", "migrate"]}]}}},
            "status": status}


def finished(kind):
    return {"succeeded" if kind == "Complete" else "failed": 1,
            "conditions": [{"type": kind, "status": "True"}]}


class Setup:
    """One migration: a database, an eslembic directory and the stand-in's state, a release
    with two Deployments in the simulator, and the environment the Job would give."""

    def __init__(self, pg, k8s, tmp_path):
        self.pg, self.k8s, self.tmp = pg, k8s, tmp_path
        self.db = "es_" + uuid.uuid4().hex[:8]
        pg.create_database(self.db)
        self.project = ap.linear(tmp_path / "project", 2)
        self.es_dir = tmp_path / "eslembic"
        self.es_dir.mkdir()
        self.state = tmp_path / "es-state.json"
        self.log = tmp_path / "calls.log"
        eslembic_standin.write_state(self.state, current=None, head="es0002")
        alembic = tmp_path / "alembic-wrapper"
        alembic.write_text(f"#!/bin/sh\nprintf '{{\"tool\": \"alembic\", \"args\": \"%s\", "
                           f"\"wall\": %s}}\\n' \"$*\" \"$(date +%s.%N)\" >> {self.log}\n"
                           f"exec /usr/bin/alembic \"$@\"\n")
        alembic.chmod(0o755)
        self.env = {"CHARTREUSE_DB_0_URL": pg.url(self.db),
                    "CHARTREUSE_ESLEMBIC_URL": ES_URL,
                    "KUBECONFIG": str(tmp_path / "kubeconfig"),  # see migrate()
                    "CHARTREUSE_ESLEMBIC": str(STANDIN),
                    "CHARTREUSE_ALEMBIC": str(alembic),
                    "ESLEMBIC_STANDIN_STATE": str(self.state),
                    "ESLEMBIC_STANDIN_LOG": str(self.log)}
        for name, scale in SCALES.items():
            k8s.put(deployment(name, scale))
            k8s.put(eds(name, scale))
        k8s.wait_for(lambda: len(k8s.objects("pods")) == sum(SCALES.values()))
        self.config(migrate=True, cleanIndex=True)

    def config(self, top=None, **eslembic):
        """The Job's config.yaml: as in its ConfigMap, eslembic has no url (the Job's env
        brings CHARTREUSE_ESLEMBIC_URL from the Secret)."""
        cfg = {"release": RELEASE, "namespace": "default", "stopPods": True,
               "image": IMAGE, "priorityClassName": "migrations",
               "ttlSecondsAfterFinished": 600,
               "databases": [{"name": "main", "alembicDirectory": str(self.project.path)}],
               "eslembic": {"directory": str(self.es_dir), **eslembic}, **(top or {})}
        self.path = self.tmp / "config.yaml"
        self.path.write_text(yaml.safe_dump(cfg))

    def migrate(self, *args, **env):
        # As the Job runs: its ServiceAccount, with the Role for this config.
        job_kubeconfig(self.k8s, self.tmp / "kubeconfig", self.path)
        return run(["migrate", "--config", str(self.path), *args],
                   env={**self.env, **env}, timeout=120)

    def calls(self):
        return eslembic_standin.read_calls(self.log)

    def eslembic_calls(self):
        return [" ".join(c["argv"]) for c in self.calls() if c["tool"] == "eslembic"]

    def es_at(self, current):
        eslembic_standin.write_state(self.state, current=current, head="es0002")

    def db_revisions(self):
        tables = self.pg.psql(self.db, "SELECT tablename FROM pg_tables WHERE "
                                       "tablename = 'alembic_version'")
        if not tables:
            return []
        return [r[0] for r in self.pg.psql(self.db, "SELECT version_num FROM alembic_version")]

    def replicas(self):
        return {n: self.k8s.get("deployments", n)["spec"]["replicas"] for n in SCALES}

    def close(self):
        self.pg.drop_database(self.db)


@pytest.fixture
def setup(pg, k8s, tmp_path):
    s = Setup(pg, k8s, tmp_path)
    yield s
    s.close()


def writes(k8s):
    return [r for r in k8s.request_log if r.method in ("POST", "PUT", "PATCH", "DELETE")]


def text(r):
    return r.err.decode() + r.out.decode()


def test_up_to_date_runs_nothing_and_touches_nothing(setup):
    setup.es_at("es0002")
    r = setup.migrate()  # the database alone needs its migration
    assert r.rc == 0, text(r)
    assert setup.eslembic_calls() == ["current"]
    assert not [x for x in setup.k8s.request_log if "/jobs" in x.path]
    setup.log.unlink()
    setup.k8s.request_log.clear()
    r = setup.migrate()
    assert r.rc == 0, text(r)
    assert "eslembic: up to date, nothing to do" in text(r)
    assert setup.eslembic_calls() == ["current"]
    assert list(setup.k8s.request_log) == []  # not even a look at the follow-up Job
    assert setup.replicas() == SCALES


def test_needed_stops_pods_upgrades_and_creates_the_follow_up_job(setup):
    k8s = setup.k8s
    r = setup.migrate()
    assert r.rc == 0, text(r)
    out = text(r)
    assert "main: migrated" in out
    assert f"eslembic: migrated; follow-up Job {JOB} created (eslembic migrate, then clean)" \
        in out
    calls = setup.calls()
    es = [c for c in calls if c["tool"] == "eslembic"]
    assert [" ".join(c["argv"]) for c in es] == ["current", "upgrade head", "current"]
    for c in es:  # in the eslembic directory, the URL in the environment only
        assert c["cwd"] == str(setup.es_dir)
        assert c["ELASTICSEARCH_URLS"] == ES_URL and c["CHARTREUSE_ESLEMBIC_URL"] == ES_URL
        assert not any("es.example" in a for a in c["argv"])
    # Order: pods down, Alembic, eslembic upgrade, the Job and its Secret, pods up.
    downs = [x.wall for x in k8s.request_log
             if x.method == "PATCH" and x.path.endswith("/scale") and
             x.json()["spec"]["replicas"] == 0]
    ups = [x.wall for x in k8s.request_log
           if x.method == "PATCH" and x.path.endswith("/scale") and
           x.json()["spec"]["replicas"] != 0]
    alembic_upgrade = [c["wall"] for c in calls
                       if c["tool"] == "alembic" and c["args"].endswith("upgrade head")]
    es_upgrade = [c["wall"] for c in es if c["argv"] == ["upgrade", "head"]]
    job_post = [x.wall for x in k8s.request_log if x.method == "POST" and
                x.path == "/apis/batch/v1/namespaces/default/jobs"]
    secret_post = [x.wall for x in k8s.request_log if x.method == "POST" and
                   x.path == "/api/v1/namespaces/default/secrets"]
    assert len(downs) == 2 and len(alembic_upgrade) == 1 and len(es_upgrade) == 1
    assert len(job_post) == 1 and len(secret_post) == 1 and len(ups) == 2
    assert max(downs) < alembic_upgrade[0] < es_upgrade[0] < job_post[0] < secret_post[0] \
        < min(ups)
    assert setup.db_revisions() == ["lin0002"]
    assert setup.replicas() == SCALES

    j = k8s.get("jobs", JOB)
    assert j["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
    assert j["metadata"]["labels"]["chartreuse.wiremind.io/release"] == RELEASE
    assert j["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "chartreuse"
    assert "helm.sh/hook" not in j["metadata"].get("annotations", {})
    spec = j["spec"]
    assert spec["backoffLimit"] == 0 and spec["ttlSecondsAfterFinished"] == 600
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["priorityClassName"] == "migrations"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in pod  # the migration's own account is a hook
    steps = pod["initContainers"] + pod["containers"]
    assert [(c["name"], c["command"]) for c in steps] == [
        ("eslembic-migrate", [str(STANDIN), "migrate"]),
        ("eslembic-clean", [str(STANDIN), "clean"])]
    secret_name = None
    for c in steps:
        assert c["image"] == "registry.example/shop:2.0"
        assert c["workingDir"] == str(setup.es_dir)
        env = {e["name"]: e for e in c["env"]}
        for var in ("CHARTREUSE_ESLEMBIC_URL", "ELASTICSEARCH_URLS"):
            ref = env[var]["valueFrom"]["secretKeyRef"]
            assert "value" not in env[var] and ref["key"] == "CHARTREUSE_ESLEMBIC_URL"
            secret_name = secret_name or ref["name"]
            assert ref["name"] == secret_name
    dumped = json.dumps(j)
    assert "es.example" not in dumped and quote(ES_PASSWORD, safe="") not in dumped
    assert "p@ss" not in dumped
    # The Secret holds the URL and goes with the Job.
    secret = k8s.get("secrets", secret_name)
    assert base64.b64decode(secret["data"]["CHARTREUSE_ESLEMBIC_URL"]).decode() == ES_URL
    owner = secret["metadata"]["ownerReferences"]
    assert [(o["kind"], o["name"], o["uid"]) for o in owner] == \
        [("Job", JOB, j["metadata"]["uid"])]


def test_only_clean_with_argocd(setup):
    """One step gives one container. With Argo CD the Job has no app.kubernetes.io/instance
    label: Argo CD would take it for an extraneous object of the application and prune it."""
    setup.config(top={"deploymentMethod": "argocd"}, migrate=False, cleanIndex=True)
    r = setup.migrate()
    assert r.rc == 0, text(r)
    j = setup.k8s.get("jobs", JOB)
    pod = j["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    assert [c["command"][1:] for c in pod["containers"]] == [["clean"]]
    assert "follow-up Job shop-chartreuse-migrate created (eslembic clean)" in text(r)
    for labels in (j["metadata"]["labels"], j["spec"]["template"]["metadata"]["labels"]):
        assert "app.kubernetes.io/instance" not in labels
        assert labels["chartreuse.wiremind.io/release"] == RELEASE


def test_no_follow_up_configured_creates_no_job(setup):
    setup.config()  # migrate and cleanIndex off
    r = setup.migrate()
    assert r.rc == 0, text(r)
    assert "eslembic: migrated" in text(r) and "follow-up" not in text(r)
    assert setup.eslembic_calls() == ["current", "upgrade head", "current"]
    assert not [x for x in writes(setup.k8s) if "/jobs" in x.path or "/secrets" in x.path]
    assert setup.k8s.get("jobs", JOB) is None


@pytest.mark.parametrize("status", [{"active": 1}, {}],
                         ids=["active-pod", "no-completion-condition"])
def test_running_follow_up_job_refuses_before_anything_changes(setup, status):
    k8s = setup.k8s
    before = k8s.put(job(status))
    k8s.request_log.clear()
    r = setup.migrate()
    assert r.rc == 1
    err = r.err_lines
    assert any(f"the Job {JOB}" in l and "still running" in l and
               "nothing was changed" in l for l in err), err
    assert writes(k8s) == []  # nothing stopped, nothing created or deleted
    assert setup.eslembic_calls() == ["current"]  # no upgrade
    assert not [c for c in setup.calls() if c["tool"] == "alembic"]
    assert setup.db_revisions() == []
    assert setup.replicas() == SCALES
    assert k8s.get("jobs", JOB)["metadata"]["uid"] == before["metadata"]["uid"]


@pytest.mark.parametrize("kind", ["Complete", "Failed"])
def test_finished_follow_up_job_is_deleted_then_recreated(setup, kind):
    """The old Job is held by a finalizer for a while after the DELETE: the new one is
    created only once it is gone."""
    k8s = setup.k8s
    old = k8s.put(job(finished(kind), finalizers=["sim.chartreuse.test/hold"]))
    released = {}

    def release_when_deleted():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            j = k8s.get("jobs", JOB)
            if j and j["metadata"].get("deletionTimestamp"):
                time.sleep(1.0)
                released["wall"] = time.time()
                k8s.patch("jobs", JOB, {"metadata": {"finalizers": None}})
                return
            time.sleep(0.05)

    t = threading.Thread(target=release_when_deleted)
    t.start()
    r = setup.migrate()
    t.join()
    assert r.rc == 0, text(r)
    log = list(k8s.request_log)
    deletes = [x for x in log if x.method == "DELETE" and x.path.endswith(f"/jobs/{JOB}")]
    assert len(deletes) == 1
    options = deletes[0].json()
    assert options["propagationPolicy"] == "Background"
    assert options["preconditions"]["uid"] == old["metadata"]["uid"]
    post = [x for x in log if x.method == "POST" and x.path.endswith("/jobs")]
    assert len(post) == 1
    assert deletes[0].wall < released["wall"] < post[0].wall
    new = k8s.get("jobs", JOB)
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    # Created fresh, not the old one's state: its first recorded state has no conditions
    # (what the Job controller does with it afterwards depends on the machine's pace).
    first = [o for _, o in k8s.history("jobs", JOB)
             if o["metadata"]["uid"] == new["metadata"]["uid"]][0]
    assert not (first.get("status") or {}).get("conditions")


def test_eslembic_upgrade_failure_is_named_and_fails_the_run(setup):
    r = setup.migrate(ESLEMBIC_STANDIN_FAIL="upgrade")
    assert r.rc == 1
    out = text(r)
    assert "eslembic: FAILED (eslembic upgrade head failed (exit 1))" in out
    assert "[eslembic] eslembic.errors.MigrationError: upgrade went wrong" in out
    assert "main: migrated" in out  # every store is handled even if another fails
    assert setup.db_revisions() == ["lin0002"]
    assert setup.k8s.get("jobs", JOB) is None
    assert not [x for x in writes(setup.k8s) if "/jobs" in x.path]


def test_eslembic_failure_that_changed_nothing_brings_the_pods_back(setup):
    r = setup.migrate(ESLEMBIC_STANDIN_FAIL="upgrade")
    assert r.rc == 1
    assert "eslembic: the indices are unchanged by the failed upgrade" in text(r), text(r)
    assert setup.replicas() == SCALES
    assert "chartreuse restore" not in text(r)


def test_eslembic_failure_that_changed_the_indices_leaves_the_pods_stopped(setup):
    r = setup.migrate(ESLEMBIC_STANDIN_FAIL_AFTER_CHANGE="upgrade")
    assert r.rc == 1
    out = text(r)
    assert "eslembic: the failed upgrade changed the indices" in out
    assert "the pods stay stopped" in out
    assert f"chartreuse restore --release {RELEASE} --namespace default" in out
    assert setup.replicas() == {n: 0 for n in SCALES}
    assert setup.k8s.get("jobs", JOB) is None  # no follow-up after a failed upgrade


def test_eslembic_current_failure_fails_without_upgrading(setup):
    setup.es_at("es0002")
    r = setup.migrate(ESLEMBIC_STANDIN_FAIL="current")
    assert r.rc == 1
    assert "eslembic: FAILED (its state could not be read (eslembic current failed))" \
        in text(r)
    assert setup.eslembic_calls() == ["current"]
    assert setup.db_revisions() == ["lin0002"]


def test_pods_not_stopped_means_eslembic_not_run(setup):
    setup.k8s.fault("PATCH", r"/scale$", status=403, times=None)
    r = setup.migrate()
    assert r.rc == 1
    assert "eslembic: FAILED (not run: the pods could not be stopped)" in text(r)
    assert setup.eslembic_calls() == ["current"]


def test_url_with_password_is_never_printed(setup):
    r = setup.migrate(ESLEMBIC_STANDIN_ECHO="1")
    assert r.rc == 0, text(r)
    out = text(r)
    assert "[eslembic] INFO  [eslembic] connecting to http://elastic:***@es.example:9200" \
        in out
    assert "http auth password=***" in out
    for leak in (ES_PASSWORD, quote(ES_PASSWORD, safe=""), "p@ss"):
        assert leak not in out
    dry = setup.migrate("--dry-run", ESLEMBIC_STANDIN_ECHO="1")
    assert "p@ss" not in text(dry) and quote(ES_PASSWORD, safe="") not in text(dry)


def test_dry_run_decides_and_changes_nothing(setup):
    setup.k8s.request_log.clear()
    r = setup.migrate("--dry-run")
    assert r.rc == 0, text(r)
    assert r.out.decode().splitlines() == [
        "main: migration needed (not applied: lin0001, lin0002)",
        "eslembic: migration needed"]
    assert setup.eslembic_calls() == ["current"]
    # The checks a migration runs first, reads only: the release's ExpectedDeploymentScales.
    assert {(r.method, r.path) for r in setup.k8s.request_log} == {
        ("GET", "/apis/wiremind.io/v1/namespaces/default/expecteddeploymentscales"),
        ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")}


def test_fixed_url_in_eslembic_ini_is_warned_about(setup):
    (setup.es_dir / "eslembic.ini").write_text(
        "[eslembic]\nscript_location = ./script.py.mako\n"
        "elasticsearch_urls=http://admin:ini-secret@localhost:9200\n")
    setup.es_at("es0002")
    r = setup.migrate("--dry-run")
    assert r.rc == 0, text(r)
    warn = [l for l in r.err_lines if "elasticsearch_urls" in l]
    assert len(warn) == 1 and "warning:" in warn[0] and "ELASTICSEARCH_URLS" in warn[0]
    assert "ini-secret" not in text(r)


def test_reference_environment_variables_without_a_database(k8s, tmp_path):
    """The reference tool's variables alone: eslembic only, migrate on, clean off."""
    es_dir = tmp_path / "eslembic"
    es_dir.mkdir()
    state, log = tmp_path / "state.json", tmp_path / "calls.log"
    eslembic_standin.write_state(state, current="es0001", head="es0002")
    env = {"CHARTREUSE_ESLEMBIC_URL": ES_URL,
           "CHARTREUSE_ESLEMBIC_ENABLE_MIGRATE": "1",
           "CHARTREUSE_ESLEMBIC_ENABLE_CLEAN": "",
           "CHARTREUSE_ESLEMBIC_DIRECTORY_PATH": str(es_dir),
           "CHARTREUSE_RELEASE_NAME": RELEASE,
           "CHARTREUSE_NAMESPACE": "default",
           "CHARTREUSE_ENABLE_STOP_PODS": "",
           "CHARTREUSE_MIGRATE_CONTAINER_IMAGE": "registry.example/shop:3.1",
           "CHARTREUSE_MIGRATE_IMAGE_PULL_SECRET": "pull-me",
           "CHARTREUSE_UPGRADE_PRIORITYCLASS_NAME": "urgent",
           "KUBECONFIG": str(job_kubeconfig(k8s, tmp_path / "kubeconfig", {
               "release": RELEASE, "namespace": "default", "stopPods": False,
               "eslembic": {"migrate": True, "cleanIndex": False}})),
           "CHARTREUSE_ESLEMBIC": str(STANDIN),
           "ESLEMBIC_STANDIN_STATE": str(state), "ESLEMBIC_STANDIN_LOG": str(log)}
    r = run(["migrate"], env=env, timeout=120)
    assert r.rc == 0, text(r)
    assert [" ".join(c["argv"]) for c in eslembic_standin.read_calls(log)] == \
        ["current", "upgrade head", "current"]
    pod = k8s.get("jobs", JOB)["spec"]["template"]["spec"]
    assert [c["command"][1:] for c in pod["containers"]] == [["migrate"]]
    assert pod["containers"][0]["image"] == "registry.example/shop:3.1"
    assert pod["imagePullSecrets"] == [{"name": "pull-me"}]
    assert pod["priorityClassName"] == "urgent"
    assert "eslembic: migrated; follow-up Job" in text(r)


def test_nothing_to_migrate_is_an_error(tmp_path):
    r = run(["migrate"], env={"CHARTREUSE_RELEASE_NAME": RELEASE})
    assert r.rc == 1
    assert "nothing to migrate" in r.err_lines[-1]


CHART = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: app, namespace: shop, labels: {app.kubernetes.io/instance: shop}}
"""


@pytest.mark.parametrize("follow_up", [True, False])
def test_role_allows_what_the_follow_up_needs(follow_up):
    sets = ["--set", "image.repository=registry.example/shop",
            "--set", "databases[0].url=postgresql://app@db:5432/app",
            "--set", "eslembic.url=http://elastic:pw@es:9200"]
    if follow_up:
        sets += ["--set", "eslembic.migrate=true"]
    r = post_render(CHART, *sets)
    assert r.rc == 0, r.err.decode()
    # Exactly the table's (tests/test_rbac.py): jobs get to see an earlier follow-up Job;
    # create/delete jobs and create secrets only with the follow-up Job.
    from test_rbac import role_for, rules_of
    assert rules_of(injected(r)["Role"][0]) == role_for(eslembic=True, follow_up=follow_up)
