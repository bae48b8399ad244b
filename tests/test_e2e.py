"""End to end: the real Helm installs and upgrades the example chart through chartreuse
(`helm chartreuse install|upgrade`, the plugin installed from this repository) against the
simulated API server, whose Job controller and job runner (tests/k8s_sim/jobrunner.py) run
the migration Job's containers as local processes: the real `chartreuse wait` and
`chartreuse migrate`, the real Alembic, the real PostgreSQL. Each scenario asserts the
database's state, the API request log and the Deployments' scales.

The application image is played by the example Alembic project (examples/alembic) at
/app/alembic: tag 1.0 is the project as shipped, 2.0 adds one revision, 3.0 adds a
revision that fails.

Helm 3 runs a post-renderer on non-hook manifests only and reads no hook annotation in its
output (tests/test_helm_sim.py::test_chartreuse_migration_job_is_a_hook): under Helm 3 the
wrapper runs the Jobs itself as Helm would run the hooks (README, "Helm 3"), so every
scenario holds for both majors.

When things happened, from three clocks that are all the host's `time.time()`:
- the API request log (`wall`: when a request arrived);
- the simulator's change history, each change stamped as it is committed (`Cluster.at`);
- Alembic itself: the application image's PATH starts with a probe `alembic` that records
  when it started and ended, with its arguments and exit status, and runs the real
  /usr/bin/alembic with the same arguments and open files (`Cluster.alembic_runs`).
An upgrade that stops the pods is then checked as: every scale-to-0 arrived before Alembic
started, no Pod of the application existed while Alembic ran, and the scale-ups arrived after
it ended.

Argo CD (deploymentMethod: argocd) has no Helm in the cluster: it renders the chart with
`helm template` (here `helm chartreuse template`, both majors) and syncs the result. `ArgoSync`
plays that sync with the real kubectl: phases PreSync, Sync, PostSync; in each, waves in
order; hooks with BeforeHookCreation deleted first; each wave applied (`kubectl apply`) and
waited for (Jobs complete, Deployments rolled out) before the next; a failed hook fails the
sync."""
import ast
import json
import os
import re
import shutil
import subprocess
import time
import uuid

import pytest
import yaml

from conftest import BIN, EXAMPLE_CHART, IMAGE_REPOSITORY, REPO, plugin_source
from k8s_sim import podsecurity
from k8s_sim.jobrunner import Image, JobRunner
from test_helm_sim import Helm, release, release_secrets

pytestmark = [pytest.mark.helm, pytest.mark.e2e]

APP = "registry.example.com/acme/billing"
VERSION = (REPO / "VERSION").read_text().strip()
TIMEOUT = "120s"
SCALES = {"shop-demo-web": 2, "shop-demo-worker": 1}
HEAD_V1 = "e27a6b4d8c13"
HEAD_V2 = "f00dcafe0002"
STOPPED = "chartreuse.wiremind.io/stopped"
HPA_BEFORE = "chartreuse.wiremind.io/hpa-behavior-before"

# The probe the application image puts first on PATH: chartreuse starts `alembic` by name.
ALEMBIC_PROBE = """#!/usr/bin/python3
import json, os, subprocess, sys, time
def note(**what):
    with open(%(log)r, "a") as f:
        f.write(json.dumps(dict(what, pod=os.environ.get("HOSTNAME"), argv=sys.argv[1:]))
                + "\\n")
note(event="start", time=time.time())
rc = subprocess.run(["/usr/bin/alembic", *sys.argv[1:]], close_fds=False).returncode
note(event="end", time=time.time(), rc=rc)
sys.exit(rc)
"""

NEW_REVISION = '''"""add invoice.note

Revision ID: f00dcafe0002
Revises: e27a6b4d8c13
"""
from alembic import op
import sqlalchemy as sa

revision = "f00dcafe0002"
down_revision = "e27a6b4d8c13"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("invoice", sa.Column("note", sa.Text(), nullable=True))


def downgrade():
    op.drop_column("invoice", "note")
'''

FAILING_REVISION = '''"""a revision that fails half-way

Revision ID: bad0000003
Revises: f00dcafe0002
"""
from alembic import op

revision = "bad0000003"
down_revision = "f00dcafe0002"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("CREATE TABLE half_done (id integer)")
    op.execute("SELECT * FROM no_such_table")


def downgrade():
    pass
'''


@pytest.fixture
def projects(tmp_path):
    """Alembic projects standing for the application image's tags."""
    v1 = tmp_path / "app-1.0"
    shutil.copytree(REPO / "examples" / "alembic", v1,
                    ignore=shutil.ignore_patterns("__pycache__"))
    v2 = tmp_path / "app-2.0"
    shutil.copytree(v1, v2)
    (v2 / "versions" / "f00dcafe0002_add_invoice_note.py").write_text(NEW_REVISION)
    v3 = tmp_path / "app-3.0"
    shutil.copytree(v2, v3)
    (v3 / "versions" / "bad0000003_fails.py").write_text(FAILING_REVISION)
    return {"1.0": v1, "2.0": v2, "3.0": v3}


def creations(log, plural, name):
    """Requests that created the object `name` of a resource: a POST to the collection
    (Helm 3, the wrapper, kubectl create) or an apply PATCH answered 201 (Helm 4)."""
    out = []
    for r in log:
        if r.status != 201:
            continue
        if r.method == "POST" and r.path.endswith(f"/{plural}"):
            if ((r.json() or {}).get("metadata") or {}).get("name") == name:
                out.append(r)
        elif r.method in ("PATCH", "PUT") and r.path.endswith(f"/{plural}/{name}"):
            out.append(r)
    return out


def helm_hook_logs(stderr):
    """The hook Pod logs Helm 4 printed (helm.sh/hook-output-log-policy). Helm copies each
    container's log into Go's `log` package, which its slog handler prints: one record
    `level=INFO msg="..."` per chunk read from the API, the chunk Go-quoted with its last
    newline dropped. Unquoted and joined, the chunks give back the log, except that a
    chunk that ended a line runs into the next one: every line's text is there whole."""
    chunks = []
    for line in stderr.splitlines():
        if not line.startswith("level=INFO msg="):
            continue
        value = line[len("level=INFO msg="):]
        quoted = re.match(r'"((?:[^"\\]|\\.)*)"', value)
        # Go's quoting escapes are a subset of Python's
        chunks.append(ast.literal_eval(quoted.group(0)) if quoted else value.split(" ")[0])
    return "".join(chunks)


def conditions(obj):
    return [c["type"] for c in (obj.get("status") or {}).get("conditions") or []
            if c.get("status") == "True"]


class Cluster:
    """The simulator with the job runner, a database, Helm of one major with the plugin."""

    def __init__(self, sim, pg, helm, projects, tmp_path):
        self.sim, self.pg, self.helm, self.tmp = sim, pg, helm, tmp_path
        self.db = "e2e_" + uuid.uuid4().hex[:8]
        pg.create_database(self.db)
        self._stamp_changes()
        self.alembic_log = tmp_path / "alembic-runs.jsonl"
        probe = tmp_path / "probe" / "alembic"
        probe.parent.mkdir()
        probe.write_text(ALEMBIC_PROBE % {"log": str(self.alembic_log)})
        probe.chmod(0o755)
        images = {f"{IMAGE_REPOSITORY}:{VERSION}": Image(
            files={"/opt/chartreuse/bin/chartreuse": BIN}, path=["/opt/chartreuse/bin"],
            workdir="/tmp")}
        for tag, project in projects.items():
            images[f"{APP}:{tag}"] = Image(
                files={"/app/alembic": project, "/opt/probe/bin/alembic": probe},
                path=["/opt/probe/bin"], workdir="/app", env={"PYTHONDONTWRITEBYTECODE": "1"})
        self.runner = JobRunner(sim, images=images, workdir=tmp_path / "pods",
                                translate_config_files=True, container_timeout=120)
        sim.kubelet_hook = self.runner
        helm("plugin", "install", str(plugin_source()))

    def values(self, **chartreuse):
        """A values file pointing the chart's database at the test's PostgreSQL."""
        db = {"name": "main", "host": self.pg.host, "port": self.pg.port,
              "user": "cr_admin", "password": "admin-pw", "database": self.db,
              "alembicDirectory": "/app/alembic"}
        values = {"chartreuse": {"databases": [db], **chartreuse}}
        path = self.tmp / f"values-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(yaml.safe_dump(values))
        return path

    def deploy(self, verb, tag, check=True, **chartreuse):
        return self.helm("chartreuse", verb, "shop", str(EXAMPLE_CHART), "-f",
                         str(self.values(**chartreuse)), "--set", f"image.tag={tag}",
                         "--timeout", TIMEOUT, check=check)

    def template(self, tag, **chartreuse):
        """What Argo CD would sync: `helm chartreuse template` of the example chart."""
        out = self.helm("chartreuse", "template", "shop", str(EXAMPLE_CHART), "-f",
                        str(self.values(**chartreuse)), "--set", f"image.tag={tag}").stdout
        return [d for d in yaml.safe_load_all(out) if d]

    # --- clocks -------------------------------------------------------------------------

    def _stamp_changes(self):
        """Stamp every change the simulator commits with the time it was committed, so the
        change history (ordered by resourceVersion) can be set against the request log and
        Alembic's own start and end. The time is taken just before the commit: a stamp is
        never later than the change, and every client sees the change after it."""
        self.stamps = {}
        commit = self.sim.store.commit

        def stamped(*args, **kwargs):
            now = time.time()
            ev = commit(*args, **kwargs)
            self.stamps[ev.rv] = now
            return ev
        self.sim.store.commit = stamped

    def at(self, obj):
        """When the change that produced this state of an object (from sim.history) was
        committed."""
        return self.stamps[int(obj["metadata"]["resourceVersion"])]

    def alembic_runs(self):
        """Every Alembic process the migration Jobs started, oldest first: pod, argv,
        start, end, rc (end and rc None if it has not ended)."""
        runs = []
        lines = self.alembic_log.read_text().splitlines() if self.alembic_log.exists() else []
        for line in lines:
            note = json.loads(line)
            if note["event"] == "start":
                runs.append({"pod": note["pod"], "argv": note["argv"], "start": note["time"],
                             "end": None, "rc": None})
            else:
                run = next(r for r in reversed(runs)
                           if r["pod"] == note["pod"] and r["end"] is None)
                run.update(end=note["time"], rc=note["rc"])
        return runs

    def app_pods_between(self, t0, t1, tag=None):
        """Pods of the release's Deployments (of the image of `tag`, or any) that existed
        (terminating ones included) at some moment between t0 and t1."""
        life = {}
        for etype, pod in self.sim.history("pods"):
            name = pod["metadata"]["name"]
            if not any(name.startswith(d + "-") for d in SCALES):
                continue
            if tag and pod["spec"]["containers"][0]["image"] != f"{APP}:{tag}":
                continue
            born, gone = life.get(name, (None, None))
            if etype == "ADDED":
                born = self.at(pod)
            elif etype == "DELETED":
                gone = self.at(pod)
            life[name] = (born, gone)
        return sorted(n for n, (born, gone) in life.items()
                      if born is not None and born <= t1 and (gone is None or gone >= t0))

    def spec_writes(self, tag):
        """When each Deployment's Pod template first carried the image of `tag`."""
        first = {}
        for _, d in self.sim.history("deployments"):
            name = d["metadata"]["name"]
            if name in SCALES and name not in first and \
                    d["spec"]["template"]["spec"]["containers"][0]["image"] == f"{APP}:{tag}":
                first[name] = d
        return first

    def job_events(self, name):
        """[(event type, True conditions, commit time)] of a Job, oldest first."""
        return [(etype, conditions(o), self.at(o)) for etype, o in self.sim.history("jobs", name)]

    def completed_at(self, name):
        """When the Job (its last run) got its Complete condition."""
        return [t for etype, conds, t in self.job_events(name)
                if etype == "MODIFIED" and "Complete" in conds][-1]

    def stored(self):
        rows = self.pg.psql(self.db, "SELECT version_num FROM alembic_version") \
            if self.pg.psql(self.db, "SELECT to_regclass('alembic_version')")[0][0] else []
        return sorted(r[0] for r in rows)

    def replicas(self):
        return {n: self.sim.get("deploy", n)["spec"]["replicas"] for n in SCALES}

    def scale_calls(self):
        """(deployment, replicas, time) of every write to a Deployment's scale."""
        return [(r.path.split("/")[-2], json.loads(r.body)["spec"]["replicas"], r.wall)
                for r in self.sim.request_log
                if r.method == "PATCH" and r.path.endswith("/scale")]

    def migration_writes(self):
        """Every write the migration Jobs' service accounts made (scale, marks, HPAs)."""
        return [str(r) for r in self.sim.request_log
                if r.method != "GET" and r.user.startswith("system:serviceaccount:")]

    def assert_stopped_around(self, run, calls=None):
        """The pods were stopped around one Alembic run: every Deployment scaled to 0 once
        before Alembic started, no Pod of them alive while it ran, each scaled back to its
        expected scale once after it ended."""
        calls = self.scale_calls() if calls is None else calls
        downs = {d: t for d, replicas, t in calls if replicas == 0}
        ups = {d: (replicas, t) for d, replicas, t in calls if replicas != 0}
        assert len([c for c in calls if c[1] == 0]) == len(downs) == len(SCALES), calls
        assert max(downs.values()) < run["start"], (calls, run)
        assert self.app_pods_between(run["start"], run["end"]) == [], run
        assert {d: replicas for d, (replicas, _) in ups.items()} == SCALES, calls
        assert len([c for c in calls if c[1] != 0]) == len(SCALES), calls
        assert run["end"] < min(t for _, t in ups.values()), (calls, run)

    def assert_nothing_left_stopped(self):
        """Every Deployment at its expected scale, unmarked; the HPA scaling up again."""
        assert self.replicas() == SCALES, self.job_logs()
        for name in SCALES:
            marks = self.sim.get("deploy", name)["metadata"].get("annotations") or {}
            assert STOPPED not in marks, (name, marks)
        hpa = self.sim.get("hpa", "shop-demo-web")
        assert HPA_BEFORE not in (hpa["metadata"].get("annotations") or {})
        assert ((hpa["spec"].get("behavior") or {}).get("scaleUp") or {}).get(
            "selectPolicy") != "Disabled", hpa["spec"]

    def job_logs(self):
        """What every migration Job Pod printed, for failure messages."""
        names = {o["metadata"]["name"] for _, o in self.sim.history("pods")
                 if "chartreuse" in o["metadata"]["name"]}
        return "\n".join(f"--- {n}\n{self.runner.logs(n)}" for n in sorted(names))

    def job_pod(self, job):
        """The name of the newest Pod of a Job."""
        return [o["metadata"]["name"] for etype, o in self.sim.history("pods")
                if etype == "ADDED" and o["metadata"]["name"].startswith(job + "-")][-1]

    def job_log(self, job):
        """What the newest Pod of a Job printed (every container)."""
        return self.runner.logs(self.job_pod(job))

    def close(self):
        self.runner.close()
        self.pg.drop_database(self.db)


@pytest.fixture
def cluster(k8s, pg, helm_major, projects, tmp_path):
    # Pod Security "restricted" enforced, as a production namespace may have it: the
    # chart's Pods and every Pod chartreuse injects must pass it.
    ns = k8s.get("namespaces", "default", namespace="")
    ns["metadata"].setdefault("labels", {})[podsecurity.LABEL] = "restricted"
    k8s.put(ns)
    c = Cluster(k8s, pg, Helm(helm_major, k8s, tmp_path / "helm"), projects, tmp_path)
    yield c
    c.close()


def test_install_migrates_and_leaves_the_deployments_running(cluster):
    cluster.deploy("install", "1.0")
    assert cluster.stored() == [HEAD_V1]
    assert cluster.replicas() == SCALES
    assert release_secrets(cluster.sim, "shop")[1]["metadata"]["labels"]["status"] == \
        "deployed"
    log = cluster.sim.request_log
    # One migration Job, created after the Deployments (post-install: after-deployment
    # mode), by Helm 4 itself or, under Helm 3, by the wrapper; no other chartreuse Job.
    jobs = creations(log, "jobs", "shop-chartreuse-upgrade")
    assert len(jobs) == 1, [str(r) for r in log.filter(path=r"/jobs")]
    assert [r for r in log.filter(path=r"/jobs") if r.status == 201] == jobs
    deployments = [r for d in SCALES for r in creations(log, "deployments", d)]
    assert len(deployments) == len(SCALES)
    assert max(r.wall for r in deployments) < jobs[0].wall
    # It ran Alembic once, and was deleted once it had completed (hook-succeeded).
    runs = cluster.alembic_runs()
    assert [(r["argv"][-2:], r["rc"]) for r in runs] == [(["upgrade", "head"], 0)], runs
    assert runs[0]["pod"].startswith("shop-chartreuse-upgrade-")
    assert jobs[0].wall < runs[0]["start"]
    events = cluster.job_events("shop-chartreuse-upgrade")
    assert [e for e, _, _ in events][-1] == "DELETED" and "Complete" in events[-1][1], events
    assert cluster.sim.get("jobs", "shop-chartreuse-upgrade") is None
    # The database was empty, so a migration was needed: with stopPods on (the default)
    # chartreuse stopped the Deployments Helm had just created and started them again,
    # as on any migration (README, "chartreuse migrate": stop only when a migration is
    # needed; an empty database needs one). So a first install does scale to 0.
    cluster.assert_stopped_around(runs[0])
    cluster.assert_nothing_left_stopped()


def test_upgrade_with_a_new_revision_stops_migrates_and_restarts(cluster):
    cluster.deploy("install", "1.0")
    cluster.sim.request_log.clear()
    installed = len(cluster.alembic_runs())
    cluster.deploy("upgrade", "2.0")
    assert cluster.stored() == ["f00dcafe0002"]
    calls = cluster.scale_calls()
    downs = [t for _, replicas, t in calls if replicas == 0]
    ups = [t for _, replicas, t in calls if replicas != 0]
    assert len(downs) == len(SCALES) and len(ups) == len(SCALES)
    assert max(downs) < min(ups)
    assert cluster.replicas() == SCALES
    # Alembic ran once, between the scale-downs and the scale-ups, with none of the
    # application's Pods left: the old code never saw the new schema.
    runs = cluster.alembic_runs()[installed:]
    assert [(r["argv"][-2:], r["rc"]) for r in runs] == [(["upgrade", "head"], 0)], runs
    cluster.assert_stopped_around(runs[0], calls)
    # After-deployment mode: Helm applied the 2.0 Deployments before the post-upgrade Job
    # was created, and the migration started after that.
    job = creations(cluster.sim.request_log, "jobs", "shop-chartreuse-upgrade")
    assert len(job) == 1
    new_spec = cluster.spec_writes("2.0")
    assert set(new_spec) == set(SCALES)
    assert max(cluster.at(d) for d in new_spec.values()) < job[0].wall < runs[0]["start"]
    cluster.assert_nothing_left_stopped()


def test_upgrade_without_a_new_revision_touches_nothing(cluster):
    cluster.deploy("install", "1.0")
    cluster.sim.request_log.clear()
    installed = len(cluster.alembic_runs())
    cluster.deploy("upgrade", "1.0", stopPods=True)
    assert cluster.stored() == [HEAD_V1]
    assert cluster.scale_calls() == []
    assert cluster.replicas() == SCALES
    # The migration Job did run, to completion...
    job = creations(cluster.sim.request_log, "jobs", "shop-chartreuse-upgrade")
    assert len(job) == 1
    assert cluster.completed_at("shop-chartreuse-upgrade") > job[0].wall
    log = cluster.job_log("shop-chartreuse-upgrade")
    assert "database main: stored e27a6b4d8c13; heads e27a6b4d8c13; not applied (none)" in \
        log, log
    assert "main: up to date, nothing to do" in log, log
    # It ran as the chart's first Deployment of the same image runs (in a restricted
    # namespace: the Pod was admitted).
    web = next(d for d in SCALES if d.endswith("-web"))
    assert f"the migration container runs with the securityContext of Deployment {web}, " \
        "which runs the same image" in log, log
    # ...and decided from the version table alone: no Alembic process was started, and
    # the Job wrote nothing to the cluster (no mark, no HPA change, no scale).
    assert cluster.alembic_runs()[installed:] == []
    assert "running alembic upgrade" not in log and "stopping" not in log, log
    assert cluster.migration_writes() == []
    cluster.assert_nothing_left_stopped()


def test_failing_migration_fails_the_upgrade_and_rollback_serves_again(cluster):
    cluster.deploy("install", "1.0")
    cluster.deploy("upgrade", "2.0")
    cluster.sim.request_log.clear()
    before = len(cluster.alembic_runs())
    p = cluster.deploy("upgrade", "3.0", check=False)
    assert p.returncode != 0
    assert "shop-chartreuse-upgrade" in p.stderr  # Helm names the failed hook
    # The migration's own error is in the Job's log, and the failed Job is kept so that it
    # can be read.
    logs = cluster.job_log("shop-chartreuse-upgrade")
    assert 'relation "no_such_table" does not exist' in logs, logs
    assert "alembic upgrade failed at revision bad0000003" in logs, logs
    assert "Failed" in conditions(cluster.sim.get("jobs", "shop-chartreuse-upgrade"))
    # `helm upgrade` shows that error, read from the API's pods/log, with its own failure.
    error_lines = ['relation "no_such_table" does not exist',
                   "chartreuse: error: database main: alembic upgrade failed at revision "
                   "bad0000003 (exit 1)",
                   "chartreuse: main: FAILED (alembic upgrade failed at revision bad0000003 "
                   "(exit 1))"]
    reads = [(r.path, r.query, r.status) for r in cluster.sim.request_log
             if r.path.endswith("/log")]
    pod_name = cluster.job_pod("shop-chartreuse-upgrade")
    pod = "/api/v1/namespaces/default/pods/" + pod_name
    migrate_log = cluster.runner.logs(pod_name, "migrate")
    if cluster.helm.major == 3:
        # The wrapper runs the Job; it prints its failure with the Job condition's reason,
        # then the end of the Pod's log, line by line.
        assert "chartreuse: error: post-upgrade hook: the Job shop-chartreuse-upgrade " \
            "failed (BackoffLimitExceeded: Job has reached the specified backoff limit); " \
            "it is kept for inspection, the end of its Pod's log follows" in p.stderr, p.stderr
        head = f"--- {pod_name} (last 20 lines)\n"
        assert head in p.stderr, p.stderr
        shown = p.stderr.split(head, 1)[1].split("\n---\n", 1)[0]
        assert shown.splitlines() == migrate_log.splitlines()[-20:], shown
        assert reads == [(pod + "/log", {"tailLines": "20"}, 200)], reads
        assert "Helm 3 has recorded the release as deployed" in p.stderr, p.stderr
    else:
        # Helm 4.1 runs the hook and reports its kstatus; the Job's
        # helm.sh/hook-output-log-policy: hook-failed makes it print, before that, the
        # whole log of each of the Pod's containers (not of the init containers).
        assert "Error: UPGRADE FAILED: post-upgrade hooks failed: resource " \
            "Job/default/shop-chartreuse-upgrade not ready. status: Failed" in p.stderr, \
            p.stderr
        shown = helm_hook_logs(p.stderr)
        assert all(line in shown for line in migrate_log.splitlines()), (shown, migrate_log)
        assert "the server answers" in logs and "the server answers" not in shown
        assert reads == [(pod + "/log", {"container": "migrate"}, 200)], reads
    for line in error_lines:
        assert line in shown, (line, shown)
    # Masked all the way: the database password is in neither the log nor Helm's output.
    assert "admin-pw" not in logs + p.stdout + p.stderr
    # One transaction: the failed revision left nothing; the pods came back.
    assert cluster.stored() == ["f00dcafe0002"]
    assert cluster.pg.psql(cluster.db, "SELECT to_regclass('half_done')")[0][0] is None
    assert cluster.replicas() == SCALES
    # Failure policy (README, "When a migration does not finish"): Alembic failed with the
    # database verifiably where it was, so the pods stopped for it were started again:
    # scaled to 0 before Alembic started, back after it ended, marks and HPA restored.
    runs = cluster.alembic_runs()[before:]
    assert [(r["argv"][-2:], r["rc"]) for r in runs] == [(["upgrade", "head"], 1)], runs
    cluster.assert_stopped_around(runs[0])
    assert "nothing was changed: starting the pods again" in logs
    cluster.assert_nothing_left_stopped()
    statuses = {v: s["metadata"]["labels"]["status"]
                for v, s in release_secrets(cluster.sim, "shop").items()}
    # Helm 4 ran the hook: revision 3 failed, 2 still the deployed one. Under Helm 3 the
    # Job ran after Helm had recorded 3 deployed (README, "Helm 3": limits).
    assert statuses == ({1: "superseded", 2: "deployed", 3: "failed"}
                        if cluster.helm.major == 4 else
                        {1: "superseded", 2: "superseded", 3: "deployed"}), statuses

    cluster.sim.request_log.clear()
    cluster.helm("rollback", "shop", "2", "--timeout", TIMEOUT)
    image = cluster.sim.get("deploy", "shop-demo-web")["spec"]["template"]["spec"][
        "containers"][0]["image"]
    assert image == f"{APP}:2.0"
    assert cluster.replicas() == SCALES
    # The rollback ran no migration (chartreuse's Jobs are upgrade hooks, not rollback
    # ones) and left the database at revision 2's head; revision 4 serves revision 2.
    assert [str(r) for r in cluster.sim.request_log.filter(path=r"/jobs")
            if r.method != "GET"] == []
    assert cluster.alembic_runs()[before + 1:] == []
    assert cluster.stored() == ["f00dcafe0002"]
    assert cluster.pg.psql(cluster.db, "SELECT to_regclass('half_done')")[0][0] is None
    assert cluster.scale_calls() == []
    secrets = release_secrets(cluster.sim, "shop")
    statuses = {v: s["metadata"]["labels"]["status"] for v, s in secrets.items()}
    assert statuses == {1: "superseded", 2: "superseded",
                        3: "failed" if cluster.helm.major == 4 else "superseded",
                        4: "deployed"}, statuses
    assert release(secrets[4])["info"]["description"] == "Rollback to 2"
    assert all(cluster.sim.get("deploy", n)["spec"]["template"]["spec"]["containers"][0][
        "image"] == f"{APP}:2.0" for n in SCALES)
    cluster.assert_nothing_left_stopped()


def test_before_deployment_mode_migrates_before_the_new_spec(cluster):
    cluster.deploy("install", "1.0", upgradeBeforeDeployment=True)
    assert cluster.stored() == [HEAD_V1]
    assert cluster.replicas() == SCALES
    # A first install runs the post-install Job <r>-<n>-install, not the pre-upgrade one.
    assert [n for n in ("shop-chartreuse-install", "shop-chartreuse-upgrade",
                        "shop-chartreuse-restore")
            if creations(cluster.sim.request_log, "jobs", n)] == ["shop-chartreuse-install"]
    installed = len(cluster.alembic_runs())
    assert installed == 1
    cluster.sim.request_log.clear()
    cluster.deploy("upgrade", "2.0", upgradeBeforeDeployment=True)
    assert cluster.stored() == ["f00dcafe0002"]
    # The migration stopped the old pods before Helm applied the new Deployment spec.
    downs = [t for _, replicas, t in cluster.scale_calls() if replicas == 0]
    new_spec = [r.wall for r in cluster.sim.request_log
                if r.method in ("PATCH", "PUT") and r.path.endswith("/deployments/shop-demo-web")
                and f"{APP}:2.0" in r.body.decode(errors="replace")]
    assert len(downs) == len(SCALES) and new_spec, cluster.job_logs()
    assert max(downs) < min(new_spec)
    # The migration Job had run Alembic to its end and was Complete before the first write
    # of a 2.0 Deployment spec (the change history is ordered: resourceVersions), and it
    # left the pods stopped (no scale-up before the new spec).
    runs = cluster.alembic_runs()[installed:]
    assert [(r["argv"][-2:], r["rc"]) for r in runs] == [(["upgrade", "head"], 0)], runs
    assert runs[0]["pod"].startswith("shop-chartreuse-upgrade-")
    assert max(downs) < runs[0]["start"]
    assert cluster.app_pods_between(runs[0]["start"], runs[0]["end"]) == []
    first_spec = min((d for d in cluster.spec_writes("2.0").values()),
                     key=lambda d: int(d["metadata"]["resourceVersion"]))
    complete = [o for etype, o in cluster.sim.history("jobs", "shop-chartreuse-upgrade")
                if "Complete" in conditions(o)]
    assert complete, cluster.job_events("shop-chartreuse-upgrade")
    assert int(complete[0]["metadata"]["resourceVersion"]) < \
        int(first_spec["metadata"]["resourceVersion"])
    assert runs[0]["end"] < min(new_spec) and runs[0]["end"] < cluster.at(first_spec)
    ups = [(d, replicas, t) for d, replicas, t in cluster.scale_calls() if replicas != 0]
    assert all(t > cluster.at(first_spec) for _, _, t in ups), ups
    # ...and the restore Job left nothing at 0, HPA-managed web included.
    assert cluster.replicas() == SCALES, cluster.job_logs()
    for name in SCALES:
        marks = cluster.sim.get("deploy", name)["metadata"].get("annotations") or {}
        assert "chartreuse.wiremind.io/stopped" not in marks
    # The restore Job came after the new spec (post-upgrade), completed, and the only
    # scale-ups of the upgrade are its own.
    restore = creations(cluster.sim.request_log, "jobs", "shop-chartreuse-restore")
    assert len(restore) == 1 and restore[0].wall > cluster.at(first_spec)
    assert cluster.completed_at("shop-chartreuse-restore") > restore[0].wall
    assert all(t > restore[0].wall for _, _, t in ups), ups
    assert cluster.alembic_runs()[installed + 1:] == []  # the restore Job runs no Alembic
    cluster.assert_nothing_left_stopped()


REPORTING_CONFIG = """\
{{- /* A second, independent migration of this release: its own database, its own Job,
after the first one (hook weight 2). */ -}}
apiVersion: chartreuse.wiremind.io/v1
kind: ChartreuseConfig
metadata:
  name: reporting
release: {{ .Release.Name | quote }}
namespace: {{ .Release.Namespace | quote }}
upgradeJobWeight: "2"
stopPods: false
image:
  repository: %(app)s
  tag: {{ .Values.image.tag | quote }}
databases:
{{ toYaml .Values.reporting.databases | indent 2 }}
"""


def test_two_databases_and_two_jobs_in_weight_order(cluster, tmp_path):
    chart = tmp_path / "chart"
    shutil.copytree(EXAMPLE_CHART, chart)
    (chart / "templates" / "chartreuse-reporting.yaml").write_text(
        REPORTING_CONFIG % {"app": APP})
    second = cluster.db + "_reporting"
    cluster.pg.create_database(second)
    try:
        main_db = {"name": "main", "host": cluster.pg.host, "port": cluster.pg.port,
                   "user": "cr_admin", "password": "admin-pw", "database": cluster.db,
                   "alembicDirectory": "/app/alembic"}
        values = tmp_path / "two.yaml"
        values.write_text(yaml.safe_dump({
            "image": {"tag": "1.0"},
            "chartreuse": {"databases": [main_db]},
            "reporting": {"databases": [dict(main_db, name="reporting", database=second)]}}))
        cluster.helm("chartreuse", "install", "shop", str(chart), "-f", str(values),
                     "--timeout", TIMEOUT)
        assert cluster.stored() == [HEAD_V1]
        rows = cluster.pg.psql(second, "SELECT version_num FROM alembic_version")
        assert [r[0] for r in rows] == [HEAD_V1]
        # Weight 1 ran to completion before weight 2 was created.
        events = [(t, o["metadata"]["name"], [c["type"] for c in (o.get("status") or {})
                                              .get("conditions") or []
                                              if c.get("status") == "True"])
                  for t, o in cluster.sim.history("jobs")]
        first_done = next(i for i, (t, n, conds) in enumerate(events)
                          if n == "shop-chartreuse-upgrade" and "Complete" in conds)
        second_made = next(i for i, (t, n, _) in enumerate(events)
                           if n == "shop-reporting-upgrade" and t == "ADDED")
        assert first_done < second_made, events
        assert cluster.replicas() == SCALES

        # An upgrade adding a revision migrates both, in weight order again: the first Job
        # (stopPods on) between its scale-down and scale-up, the second (stopPods off)
        # after it, with the pods running and no scale call of its own.
        cluster.sim.request_log.clear()
        installed = len(cluster.alembic_runs())
        cluster.helm("chartreuse", "upgrade", "shop", str(chart), "-f", str(values),
                     "--set", "image.tag=2.0", "--timeout", TIMEOUT)
        assert cluster.stored() == [HEAD_V2]
        rows = cluster.pg.psql(second, "SELECT version_num FROM alembic_version")
        assert [r[0] for r in rows] == [HEAD_V2]
        runs = cluster.alembic_runs()[installed:]
        assert [(r["pod"].rsplit("-", 1)[0], r["argv"][-2:], r["rc"]) for r in runs] == [
            ("shop-chartreuse-upgrade", ["upgrade", "head"], 0),
            ("shop-reporting-upgrade", ["upgrade", "head"], 0)], runs
        assert runs[0]["end"] < runs[1]["start"]
        assert cluster.completed_at("shop-chartreuse-upgrade") < \
            creations(cluster.sim.request_log, "jobs", "shop-reporting-upgrade")[0].wall
        cluster.assert_stopped_around(runs[0])
        assert max(t for _, _, t in cluster.scale_calls()) < runs[1]["start"]
        assert {r.user for r in cluster.sim.request_log
                if r.method == "PATCH" and r.path.endswith("/scale")} == \
            {"system:serviceaccount:default:shop-chartreuse"}
        assert len(cluster.app_pods_between(runs[1]["start"], runs[1]["end"])) >= \
            sum(SCALES.values())
        cluster.assert_nothing_left_stopped()
    finally:
        cluster.pg.drop_database(second)


# --- Argo CD --------------------------------------------------------------------------------

HOOK = "argocd.argoproj.io/hook"
WAVE = "argocd.argoproj.io/sync-wave"
DELETE_POLICY = "argocd.argoproj.io/hook-delete-policy"
# Argo CD's apply order within a wave (gitops-engine's kind order; other kinds after).
KIND_ORDER = ["Namespace", "ServiceAccount", "Secret", "ConfigMap", "Role", "RoleBinding",
              "Service", "Deployment", "HorizontalPodAutoscaler", "Job"]


class ArgoSyncFailed(Exception):
    pass


class ArgoSync:
    """Argo CD's sync of rendered manifests, played with the real kubectl of the Helm
    major's layer against the simulator (see the module docstring)."""

    def __init__(self, cluster):
        self.cluster, self.sim = cluster, cluster.sim
        self.kubectl_bin = str(REPO / ".cache" / "helm" / f"v{cluster.helm.major}" / "kubectl")
        self.env = dict(os.environ, KUBECONFIG=str(
            self.sim.kubeconfig(cluster.tmp / "argocd" / "kubeconfig")))
        self.steps = []  # (phase, wave, [kind/name], time applied)

    def kubectl(self, *args, stdin=None):
        p = subprocess.run([self.kubectl_bin, "-n", "default", *args], input=stdin,
                           capture_output=True, text=True, env=self.env, timeout=120)
        assert p.returncode == 0, f"kubectl {' '.join(args)}:\n{p.stdout}\n{p.stderr}"
        return p.stdout

    @staticmethod
    def phase(doc):
        hook = (doc["metadata"].get("annotations") or {}).get(HOOK)
        return hook.split(",")[0].strip() if hook else "Sync"

    @staticmethod
    def wave(doc):
        return int((doc["metadata"].get("annotations") or {}).get(WAVE, "0"))

    def __call__(self, docs):
        for phase in ("PreSync", "Sync", "PostSync"):
            tasks = [d for d in docs if self.phase(d) == phase]
            for wave in sorted({self.wave(d) for d in tasks}):
                batch = sorted((d for d in tasks if self.wave(d) == wave), key=lambda d: (
                    KIND_ORDER.index(d["kind"]) if d["kind"] in KIND_ORDER
                    else len(KIND_ORDER), d["metadata"]["name"]))
                for d in batch:
                    ann = d["metadata"].get("annotations") or {}
                    if HOOK in ann and "BeforeHookCreation" in ann.get(DELETE_POLICY, ""):
                        self.kubectl("delete", f"{d['kind'].lower()}/{d['metadata']['name']}",
                                     "--ignore-not-found", "--wait=true", "--timeout=60s")
                self.steps.append((phase, wave, [f"{d['kind']}/{d['metadata']['name']}"
                                                 for d in batch], time.time()))
                self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(batch))
                for d in batch:
                    self.wait_healthy(d)

    def wait_healthy(self, doc):
        name = doc["metadata"]["name"]
        if doc["kind"] == "Job":
            def done():
                job = self.sim.get("jobs", name)
                conds = conditions(job) if job else []
                return "Complete" in conds or "Failed" in conds and "Failed"
            if self.sim.wait_for(done, timeout=120, what=f"Job {name}") == "Failed":
                raise ArgoSyncFailed(f"hook Job {name} failed")
        elif doc["kind"] == "Deployment":
            def rolled_out():
                d = self.sim.get("deploy", name)
                st, want = d.get("status") or {}, d["spec"].get("replicas", 1)
                return st.get("observedGeneration", 0) >= d["metadata"].get("generation", 1) \
                    and st.get("updatedReplicas", 0) == want \
                    and st.get("availableReplicas", 0) == want
            self.sim.wait_for(rolled_out, timeout=60, what=f"Deployment {name} rolled out")


def annotations_of(docs):
    """{kind/name: the Argo CD and Helm hook annotations} of chartreuse's objects."""
    return {f"{d['kind']}/{d['metadata']['name']}":
            {k: v for k, v in (d["metadata"].get("annotations") or {}).items()
             if k.startswith(("argocd.argoproj.io/", "helm.sh/"))}
            for d in docs
            if (d["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == "chartreuse"}


def env_of(docs, job):
    pod = next(d for d in docs if d["kind"] == "Job" and d["metadata"]["name"] == job)
    return {e["name"]: e.get("value")
            for e in pod["spec"]["template"]["spec"]["containers"][0].get("env") or []}


COMPANIONS = ["ServiceAccount/shop-chartreuse", "Secret/shop-chartreuse",
              "ConfigMap/shop-chartreuse", "Role/shop-chartreuse",
              "RoleBinding/shop-chartreuse"]


def test_argocd_sync_hook_migrates_before_the_new_version(cluster):
    argocd = ArgoSync(cluster)
    docs = cluster.template("1.0", deploymentMethod="argocd")
    # Argo CD's annotations only: companions one wave before the Sync hook Job, the restore
    # Job a PostSync hook; BeforeHookCreation everywhere, no Helm hook.
    hooks = {"argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation"}
    assert annotations_of(docs) == {
        **{c: {**hooks, HOOK: "Sync", WAVE: "-51"} for c in COMPANIONS},
        "Job/shop-chartreuse-upgrade": {**hooks, HOOK: "Sync", WAVE: "-50"},
        "Job/shop-chartreuse-restore": {**hooks, HOOK: "PostSync", WAVE: "-50"}}
    assert env_of(docs, "shop-chartreuse-upgrade")["CHARTREUSE_UPGRADE_BEFORE_DEPLOYMENT"] \
        == "true"

    # First sync: the migration runs before anything of the application exists, so it has
    # nothing to stop; the restore Job then finds nothing stopped.
    argocd(docs)
    assert [(phase, wave) for phase, wave, _, _ in argocd.steps] == [
        ("Sync", -51), ("Sync", -50), ("Sync", 0), ("PostSync", -50)]
    assert cluster.stored() == [HEAD_V1]
    runs = cluster.alembic_runs()
    assert [(r["argv"][-2:], r["rc"]) for r in runs] == [(["upgrade", "head"], 0)], runs
    assert "release shop has no ExpectedDeploymentScale: no pods to stop" in \
        cluster.job_log("shop-chartreuse-upgrade")
    assert cluster.completed_at("shop-chartreuse-upgrade") < argocd.steps[2][3]
    restore = creations(cluster.sim.request_log, "jobs", "shop-chartreuse-restore")
    assert len(restore) == 1 and restore[0].wall > argocd.steps[2][3]
    assert "Complete" in conditions(cluster.sim.get("jobs", "shop-chartreuse-restore"))
    # No scale-down at all, and nothing scaled before the restore Job. (The restore Job
    # does write each Deployment's scale, to the expectedScale it already had, although
    # nothing was marked stopped: `restore` scales every ExpectedDeploymentScale target.)
    calls = cluster.scale_calls()
    assert [c for c in calls if c[1] == 0 or c[2] < restore[0].wall] == [], calls
    assert all(replicas == SCALES[d] for d, replicas, _ in calls), calls
    cluster.assert_nothing_left_stopped()

    # Second sync, version 2.0 with a new revision: the Sync hook stops the 1.0 pods,
    # migrates and leaves them stopped; wave 0 applies the 2.0 Deployments; the PostSync
    # restore Job gives the scales and the HPA back. Argo CD keeps hooks until the next
    # sync, which deletes them first (BeforeHookCreation).
    cluster.sim.request_log.clear()
    argocd.steps.clear()
    argocd(cluster.template("2.0", deploymentMethod="argocd"))
    assert cluster.stored() == [HEAD_V2]
    run = cluster.alembic_runs()[1:]
    assert [(r["argv"][-2:], r["rc"]) for r in run] == [(["upgrade", "head"], 0)], run
    run = run[0]
    assert [r.status for r in cluster.sim.request_log.filter(
        "DELETE", r"/jobs/shop-chartreuse-upgrade$")] == [200]
    downs = [t for _, replicas, t in cluster.scale_calls() if replicas == 0]
    assert len(downs) == len(SCALES) and max(downs) < run["start"]
    assert cluster.app_pods_between(run["start"], run["end"]) == []
    new_spec = cluster.spec_writes("2.0")
    assert set(new_spec) == set(SCALES)
    assert run["end"] < cluster.completed_at("shop-chartreuse-upgrade") < \
        min(cluster.at(d) for d in new_spec.values())
    # The PostSync restore Job came after the new spec, completed, and left every
    # Deployment at its scale, unmarked, the HPA scaling again.
    restore = creations(cluster.sim.request_log, "jobs", "shop-chartreuse-restore")
    assert len(restore) == 1
    assert restore[0].wall > max(cluster.at(d) for d in new_spec.values())
    assert "Complete" in conditions(cluster.sim.get("jobs", "shop-chartreuse-restore"))
    # Wave 0's apply brought the replicas back with the new spec; the restore Job scales
    # only what is still below its expected scale, and takes the marks and the HPA's pause
    # back.
    ups = [(d, replicas, t) for d, replicas, t in cluster.scale_calls() if replicas != 0]
    cluster.assert_nothing_left_stopped()
    # README ("During helm upgrade", Argo CD): the Sync hook leaves the old version stopped
    # and the new one starts at wave 0, so no 1.0 Pod runs against the 2.0 schema.
    first_spec = min(cluster.at(d) for d in new_spec.values())
    assert cluster.app_pods_between(run["end"], first_spec, tag="1.0") == []
    assert [c for c in ups if c[2] < first_spec] == []
    assert all(t > restore[0].wall for _, _, t in ups), ups


def test_argocd_postsync_hook_migrates_after_the_sync(cluster):
    argocd = ArgoSync(cluster)
    values = {"deploymentMethod": "argocd", "argocd": {"hook": "PostSync"}}
    docs = cluster.template("1.0", **values)
    # PostSync: the migration runs after the application is synced, as the after-deployment
    # mode does, and there is no restore Job.
    hooks = {"argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation"}
    assert annotations_of(docs) == {
        **{c: {**hooks, HOOK: "PostSync", WAVE: "-51"} for c in COMPANIONS},
        "Job/shop-chartreuse-upgrade": {**hooks, HOOK: "PostSync", WAVE: "-50"}}
    assert env_of(docs, "shop-chartreuse-upgrade")["CHARTREUSE_UPGRADE_BEFORE_DEPLOYMENT"] \
        == "false"

    argocd(docs)
    assert [(phase, wave) for phase, wave, _, _ in argocd.steps] == [
        ("Sync", 0), ("PostSync", -51), ("PostSync", -50)]
    assert cluster.stored() == [HEAD_V1]
    runs = cluster.alembic_runs()
    assert [(r["argv"][-2:], r["rc"]) for r in runs] == [(["upgrade", "head"], 0)], runs
    # The Deployments were up (the sync had rolled them out) and the database empty: the
    # migration stopped them and started them again itself.
    cluster.assert_stopped_around(runs[0])
    cluster.assert_nothing_left_stopped()

    cluster.sim.request_log.clear()
    argocd.steps.clear()
    argocd(cluster.template("2.0", **values))
    assert cluster.stored() == [HEAD_V2]
    run = cluster.alembic_runs()[1:]
    assert [(r["argv"][-2:], r["rc"]) for r in run] == [(["upgrade", "head"], 0)], run
    new_spec = cluster.spec_writes("2.0")
    assert set(new_spec) == set(SCALES)
    job = creations(cluster.sim.request_log, "jobs", "shop-chartreuse-upgrade")
    assert len(job) == 1
    assert max(cluster.at(d) for d in new_spec.values()) < job[0].wall < run[0]["start"]
    cluster.assert_stopped_around(run[0])
    assert creations(cluster.sim.request_log, "jobs", "shop-chartreuse-restore") == []
    cluster.assert_nothing_left_stopped()
