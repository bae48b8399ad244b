"""`chartreuse migrate` stopping and starting the release's Deployments through the
simulated API server (tests/k8s_sim), around a real migration on the real PostgreSQL, and
`chartreuse restore` on its own.

Orders are read from the simulator's change history: every write gets the next
resourceVersion of one counter (as etcd's revision), so "the scale to 0 of group B came
after the deletion of the last Pod of group A" is a comparison of two resourceVersions,
not of clocks."""
import json
import os
import re
import signal
import shlex
import subprocess
import threading
import time
import uuid
from functools import partial

import pytest
import yaml

import alembic_projects as ap
import k8s_objects
from conftest import BIN, SLOWDOWN, WRAPPER, assert_no_checker_report, run
from rbac_helpers import forbidden, job_kubeconfig

RELEASE = "shop"
GROUPS = {"api": 10, "web": 10, "worker": 5, "cron": 0}  # deployment -> priority
SCALES = {"api": 3, "web": 2, "worker": 1, "cron": 1}
BEHAVIOR = {"scaleDown": {"stabilizationWindowSeconds": 120,
                          "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}


deployment = partial(k8s_objects.deployment, release=RELEASE)
eds = partial(k8s_objects.eds, release=RELEASE)
hpa = k8s_objects.hpa

STOPPED = "chartreuse.wiremind.io/stopped"
RECORDED = "chartreuse.wiremind.io/hpa-behavior-before"
STOP_DELAY = "sim.chartreuse.test/stop-delay"
# The settings of the migration and restore Jobs: their Role (rbac_helpers.job_kubeconfig).
JOB = {"release": RELEASE, "namespace": "default", "stopPods": True}


@pytest.fixture
def release(k8s):
    for i, (name, prio) in enumerate(GROUPS.items()):
        k8s.put(deployment(name, SCALES[name]))
        # Both release labels are looked up: "cron" is only labelled the old way.
        k8s.put(eds(name, SCALES[name], priority=prio,
                    label="release" if name == "cron" else "app.kubernetes.io/instance"))
    k8s.put(hpa("api", BEHAVIOR))
    k8s.put(hpa("web", None))
    deadline = time.monotonic() + 10
    while len(k8s.objects("pods")) < sum(SCALES.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return k8s


@pytest.fixture
def migration(pg, tmp_path, k8s):
    name = "pods_" + uuid.uuid4().hex[:8]
    pg.create_database(name)
    project = ap.linear(tmp_path / "project", 2)
    cfg = {"release": RELEASE, "namespace": "default", "stopPods": True,
           "databases": [{"name": "main", "alembicDirectory": str(project.path)}]}
    kubeconfig = job_kubeconfig(k8s, tmp_path / "kubeconfig", cfg)  # as the Job runs
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {"CHARTREUSE_DB_0_URL": pg.url(name), "KUBECONFIG": str(kubeconfig)}
    yield path, env, name
    pg.drop_database(name)


def scale_patches(k8s):
    """[(Deployment, replicas, time)] of every scale PATCH, in the order they came."""
    return [(r.path.split("/")[-2], json.loads(r.body)["spec"]["replicas"], r.time)
            for r in k8s.request_log if r.method == "PATCH" and r.path.endswith("/scale")]


def outside_the_role(k8s):
    """The requests the Job's Role refused (the simulator enforces it: rbac_helpers)."""
    return forbidden(k8s)


def with_settings(cfg, **settings):
    """The migration's config file with some settings changed (stopPodsTimeout...)."""
    doc = yaml.safe_load(cfg.read_text())
    doc.update(settings)
    cfg.write_text(yaml.safe_dump(doc))


def migrated(pg, db):
    """Whether Alembic ran: the version table exists."""
    return pg.psql(db, "SELECT to_regclass('alembic_version')")[0][0] is not None


def rv(obj):
    return int(obj["metadata"]["resourceVersion"])


def annotations(obj):
    return obj["metadata"].get("annotations") or {}


def scale_downs(k8s):
    """{Deployment: resourceVersion of the change that took spec.replicas to 0}, from the
    change history, with every state at 0 checked for the chartreuse mark on the way."""
    last, downs = {}, {}
    for etype, d in k8s.history("deployments"):
        name, replicas = d["metadata"]["name"], d["spec"].get("replicas")
        if replicas == 0:
            assert annotations(d).get(STOPPED) == "true", \
                f"Deployment {name} at 0 without {STOPPED} (rv {rv(d)})"
            if last.get(name):
                assert name not in downs, f"Deployment {name} scaled to 0 twice"
                downs[name] = rv(d)
        last[name] = replicas
    return downs


def pod_lives(k8s):
    """{Pod: (app label, rv of its creation, rv of its deletion or None, rv at which it
    became Failed or None)}, from the change history."""
    lives = {}
    for etype, pod in k8s.history("pods"):
        name = pod["metadata"]["name"]
        app = (pod["metadata"].get("labels") or {}).get("app")
        born, gone, failed = lives.get(name, (app, rv(pod), None, None))[1:]
        if etype == "DELETED":
            gone = rv(pod)
        elif failed is None and (pod.get("status") or {}).get("phase") == "Failed":
            failed = rv(pod)
        lives[name] = (app, born, gone, failed)
    return lives


def counting_at(lives, apps, at):
    """The Pods of these Deployments that existed, and were not Failed, at resourceVersion
    `at`: the ones chartreuse must wait for."""
    return sorted(name for name, (app, born, gone, failed) in lives.items()
                  if app in apps and born < at and (gone is None or gone > at)
                  and (failed is None or failed > at))


# --- three priority groups, each of several Deployments, several under an HPA -----------

# deployment -> (priority, replicas = expectedScale); "front-b" and "api-c" take longer
# to stop, so that each group's last Pod is one of theirs.
THREE = {"front-a": (30, 2), "front-b": (30, 1), "front-c": (30, 3),
         "api-a": (20, 2), "api-b": (20, 2), "api-c": (20, 1),
         "jobs-a": (10, 1), "jobs-b": (10, 2), "jobs-c": (10, 1)}
SLOW = {"front-b": "0.9", "api-c": "0.7"}
OLD_LABEL = {"jobs-c"}  # found under release=<release> only
PRIORITIES = [30, 20, 10]
# HPA name -> (target, spec.behavior or None); "other" scales a Deployment of no release.
HPAS = {
    "front-a": ("front-a", {
        "scaleUp": {"selectPolicy": "Max", "stabilizationWindowSeconds": 0,
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15},
                                 {"type": "Pods", "value": 4, "periodSeconds": 15}]},
        "scaleDown": {"stabilizationWindowSeconds": 300,
                      "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}]}}),
    "front-c": ("front-c", None),
    "api-a": ("api-a", BEHAVIOR),
    "api-b-autoscaler": ("api-b", None),
    "jobs-b": ("jobs-b", {"scaleUp": {"stabilizationWindowSeconds": 30,
                                      "policies": [{"type": "Pods", "value": 1,
                                                    "periodSeconds": 60}]}}),
    "other": ("other", {"scaleDown": {"selectPolicy": "Min"}}),
}
RELEASE_HPAS = [n for n, (target, _) in HPAS.items() if target in THREE]


def group(priority):
    return [n for n, (p, _) in THREE.items() if p == priority]


@pytest.fixture
def three_groups(k8s):
    for name, (prio, replicas) in THREE.items():
        k8s.put(deployment(name, replicas,
                           annotations={STOP_DELAY: SLOW[name]} if name in SLOW else None))
        k8s.put(eds(name, replicas, priority=prio,
                    label="release" if name in OLD_LABEL else "app.kubernetes.io/instance"))
    other = deployment("other", 2)
    other["metadata"]["labels"] = {"app.kubernetes.io/instance": "another-release"}
    k8s.put(other)
    for name, (target, behavior) in HPAS.items():
        k8s.put(hpa(target, behavior, name=name))
    pods = sum(r for _, r in THREE.values()) + 2
    k8s.wait_for(lambda: len([p for p in k8s.objects("pods")
                              if p.get("status", {}).get("phase") == "Running"]) == pods,
                 timeout=10, what="the release's pods running")
    return k8s


def test_three_groups_stop_in_order_and_start_exactly(three_groups, migration, pg):
    k8s = three_groups
    cfg, env, db = migration
    before = {kind: {o["metadata"]["name"]: o for o in k8s.objects(kind)}
              for kind in ("deployments", "horizontalpodautoscalers")}
    r = run(["migrate", "--config", str(cfg)], env=env, timeout=120)
    assert r.rc == 0, r.err.decode()
    assert outside_the_role(k8s) == []
    err = r.err.decode()

    # The request log: one scale to 0 per Deployment, the groups highest priority first,
    # a group's calls all before the next group's; then one scale to expectedScale each.
    scales = [(rec.path.split("/")[-2], rec.json()["spec"]["replicas"])
              for rec in k8s.request_log.filter("PATCH", r"/deployments/[^/]+/scale$")]
    downs = [n for n, replicas in scales if replicas == 0]
    assert sorted(downs) == sorted(THREE)
    assert [THREE[n][0] for n in downs] == sorted((THREE[n][0] for n in downs), reverse=True)
    assert {n: replicas for n, replicas in scales if replicas} == \
        {n: replicas for n, (_, replicas) in THREE.items()}
    assert not [rec for rec in k8s.request_log if "/deployments/other" in rec.path
                or "/horizontalpodautoscalers/other" in rec.path]

    # The history: no group's first scale to 0 before every Pod of the group before it is
    # deleted (Pod DELETED events against the Deployment change, by resourceVersion).
    down_rv = scale_downs(k8s)  # also: every Deployment at 0 carried the mark
    lives = pod_lives(k8s)
    for earlier, later in zip(PRIORITIES, PRIORITIES[1:]):
        first_of_later = min(down_rv[n] for n in group(later))
        earlier_down = min(down_rv[n] for n in group(earlier))
        # The earlier group did have Pods to wait for when it was scaled down...
        assert len(counting_at(lives, group(earlier), earlier_down)) == \
            sum(THREE[n][1] for n in group(earlier))
        # ...and none was left when the later group's first scale to 0 landed.
        assert counting_at(lives, group(earlier), first_of_later) == []
        last_gone = max(gone for name, (app, born, gone, _) in lives.items()
                        if app in group(earlier) and born < earlier_down)
        assert last_gone < first_of_later
        # The slow Deployment's Pods were the last of the group: it was waited for.
        slow = [gone for name, (app, born, gone, _) in lives.items()
                if app in SLOW and app in group(earlier) and born < earlier_down]
        assert max(slow) == last_gone
    assert "stopping priority group 30 (3 Deployments)" in err
    assert "stopping priority group 10 (3 Deployments)" in err

    # Each HPA was paused (scale-up Disabled, its behaviour recorded as it was) before its
    # group's scale to 0 (SPEC §2) -- in fact before any group's: they are all paused up
    # front (README, "Stopping and starting pods", says why).
    first_down = min(down_rv.values())
    for name in RELEASE_HPAS:
        target, behavior = HPAS[name]
        paused = [h for _, h in k8s.history("horizontalpodautoscalers", name)
                  if RECORDED in annotations(h)]
        assert paused, f"HPA {name} was never paused"
        h = paused[0]
        assert h["spec"]["behavior"]["scaleUp"]["selectPolicy"] == "Disabled"
        assert json.loads(annotations(h)[RECORDED]) == behavior
        assert rv(h) < first_down <= min(down_rv[n] for n in group(THREE[target][0]))
    assert [e for e, _ in k8s.history("horizontalpodautoscalers", "other")] == ["ADDED"]

    # Alembic ran.
    rows = pg.psql(db, "SELECT version_num FROM alembic_version")
    assert [r[0] for r in rows] == ["lin0002"]

    # Back exactly: every Deployment at its expectedScale with its own annotations only,
    # every HPA's spec and annotations as they were (behaviour present or absent alike),
    # each HPA's recorded behaviour put back whole (nobody changed it while it was paused).
    assert "changed since it was paused" not in err
    for name, (_, replicas) in THREE.items():
        d = k8s.get("deployments", name)
        assert d["spec"]["replicas"] == replicas
        assert annotations(d) == annotations(before["deployments"][name])
    for name in HPAS:
        h = k8s.get("horizontalpodautoscalers", name)
        assert h["spec"] == before["horizontalpodautoscalers"][name]["spec"], name
        assert annotations(h) == annotations(before["horizontalpodautoscalers"][name])
        assert ("behavior" in h["spec"]) == (HPAS[name][1] is not None)
    assert k8s.get("deployments", "other")["spec"]["replicas"] == 2


def test_hpas_are_all_paused_before_any_pod_stops(three_groups, migration, pg):
    """Why the HPAs are paused up front rather than group by group: an HPA that can't be
    paused (here a lasting 403 on one of the last group) fails the run before a single
    Deployment is scaled down, instead of after the first groups were stopped."""
    k8s = three_groups
    cfg, env, db = migration
    before = {o["metadata"]["name"]: o for o in k8s.objects("horizontalpodautoscalers")}
    k8s.fault("PATCH", r"/horizontalpodautoscalers/jobs-b$", status=403, times=None)
    r = run(["migrate", "--config", str(cfg)], env=env, timeout=120)
    assert r.rc == 1
    err = r.err.decode()
    assert re.search(r"PATCH \S*/horizontalpodautoscalers/jobs-b\b.*403", err), err
    assert "not run: the pods could not be stopped" in err
    assert not [rec for rec in k8s.request_log.filter("PATCH", r"/scale$")
                if rec.json()["spec"]["replicas"] == 0]
    assert scale_downs(k8s) == {}
    assert not migrated(pg, db)
    # What was paused and marked is put back.
    for name, (_, replicas) in THREE.items():
        d = k8s.get("deployments", name)
        assert d["spec"]["replicas"] == replicas and STOPPED not in annotations(d)
    for name, h in before.items():
        assert k8s.get("horizontalpodautoscalers", name)["spec"] == h["spec"], name


def test_nothing_needed_touches_nothing(release, migration):
    k8s = release
    cfg, env, _ = migration
    assert run(["migrate", "--config", str(cfg)], env=env, timeout=120).rc == 0
    k8s.request_log.clear()
    r = run(["migrate", "--config", str(cfg)], env=env, timeout=120)
    assert r.rc == 0 and "up to date" in r.err.decode()
    assert list(k8s.request_log) == []


def test_no_expected_deployment_scale_means_nothing_touched(k8s, migration):
    cfg, env, _ = migration
    k8s.put(deployment("lonely", 2))
    r = run(["migrate", "--config", str(cfg)], env=env, timeout=120)
    assert r.rc == 0, r.err.decode()
    assert "no ExpectedDeploymentScale" in r.err.decode()
    # nothing written (the preflight's access questions change nothing)
    assert not [x for x in k8s.request_log if x.method in ("PATCH", "PUT", "POST")
                and not x.path.endswith("/selfsubjectaccessreviews")]
    assert k8s.get("deployments", "lonely")["spec"]["replicas"] == 2


def test_expected_scale_for_a_missing_deployment_is_skipped(release, migration):
    k8s = release
    cfg, env, _ = migration
    k8s.put(eds("gone", 2, priority=7))
    r = run(["migrate", "--config", str(cfg)], env=env, timeout=120)
    assert r.rc == 0, r.err.decode()
    assert "Deployment gone (named by an ExpectedDeploymentScale) does not exist" in \
        r.err.decode()
    assert {n: k8s.get("deployments", n)["spec"]["replicas"] for n in SCALES} == SCALES


def test_kill_9_after_the_stop_then_restore_heals(release, pg, tmp_path):
    import signal
    k8s = release
    name = "kill_" + uuid.uuid4().hex[:8]
    pg.create_database(name)
    try:
        specs = [("slow01", None, {"upgrade": 'op.execute("SELECT pg_sleep(5)")\n    '
                                             + ap.create_table("slow01")})]
        project = ap._project(tmp_path / "project", specs, ["slow01"])
        cfg = tmp_path / "config.yaml"
        cfg.write_text(yaml.safe_dump({
            "release": RELEASE, "namespace": "default", "stopPods": True,
            "databases": [{"name": "main", "alembicDirectory": str(project.path)}]}))
        kubeconfig = job_kubeconfig(k8s, tmp_path / "kubeconfig", JOB)
        env = dict(os.environ, CHARTREUSE_DB_0_URL=pg.url(name), KUBECONFIG=str(kubeconfig))
        p = subprocess.Popen([BIN, "migrate", "--config", str(cfg)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and \
                any(k8s.get("deployments", n)["spec"]["replicas"] for n in SCALES):
            time.sleep(0.05)
        time.sleep(0.5)
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=30)
        # Left stopped, with the record of it.
        assert all(k8s.get("deployments", n)["spec"]["replicas"] == 0 for n in SCALES)
        api = k8s.get("horizontalpodautoscalers", "api")
        assert api["spec"]["behavior"]["scaleUp"]["selectPolicy"] == "Disabled"
        restore = ["restore", "--release", RELEASE, "--namespace", "default"]
        for _ in range(2):  # idempotent
            r = run(restore, env={"KUBECONFIG": str(kubeconfig)}, timeout=60)
            assert r.rc == 0, r.err.decode()
            assert {n: k8s.get("deployments", n)["spec"]["replicas"] for n in SCALES} == SCALES
            assert k8s.get("horizontalpodautoscalers", "api")["spec"]["behavior"] == BEHAVIOR
            for n in SCALES:
                ann = k8s.get("deployments", n)["metadata"].get("annotations", {})
                assert "chartreuse.wiremind.io/stopped" not in ann
    finally:
        pg.drop_database(name)


def test_restore_needs_a_release():
    r = run(["restore"])
    assert r.rc == 2 and "--release" in r.err_lines[0]


def test_a_group_is_scaled_in_parallel(release, migration):
    k8s = release
    cfg, env, _ = migration
    k8s.fault("PATCH", r"/scale$", delay=0.5, times=None)  # each scale call answers slowly
    r = run(["migrate", "--config", str(cfg)], env=env, timeout=120)
    assert r.rc == 0, r.err.decode()
    downs = {x.path.split("/")[-2]: x for x in k8s.request_log
             if x.method == "PATCH" and x.path.endswith("/scale")
             and json.loads(x.body)["spec"]["replicas"] == 0}
    api, web = downs["api"], downs["web"]  # the priority-10 group
    # In flight at the same time: each started before the other was answered.
    assert api.time < web.time + web.duration and web.time < api.time + api.duration
    # ...and never across groups: worker (priority 5) waits for api/web's Pods.
    assert downs["worker"].time > max(api.time + api.duration, web.time + web.duration)


# --- long waits, Failed Pods, the deadline ---------------------------------------------

def start_migrate(cfg, env):
    """`chartreuse migrate` in the background; its stderr lines, each with the monotonic
    time it arrived, gathered in a list as they come."""
    p = subprocess.Popen(WRAPPER + [BIN, "migrate", "--config", str(cfg)],
                         env=dict(os.environ, **env), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(
        (time.monotonic(), raw) for raw in iter(p.stderr.readline, b"")), daemon=True)
    reader.start()
    return p, lines, reader


def finish(p, lines, reader, timeout=60):
    rc = p.wait(timeout=timeout)
    reader.join(timeout=10)
    stderr = b"".join(raw for _, raw in lines)
    assert_no_checker_report(stderr)
    return rc, [(t, raw.decode(errors="replace").rstrip("\n")) for t, raw in lines]


PROGRESS = re.compile(r"priority group (\d+): (\d+) pods left \((\d+) s\)$")


def test_a_long_wait_prints_progress_every_5_s(release, migration):
    """Pods that take 11.5 s to stop: the Job log says, at 5 s and 10 s, which group is
    waiting for how many Pods, and for how long it has been."""
    k8s = release
    cfg, env, _ = migration
    k8s.put(deployment("slow", 2, annotations={STOP_DELAY: "11.5"}))
    k8s.put(eds("slow", 2, priority=5))
    k8s.wait_for(lambda: len(k8s.pods_of("slow")) == 2, timeout=10, what="slow's pods")
    rc, lines = finish(*start_migrate(cfg, env), timeout=120)
    assert rc == 0, "\n".join(text for _, text in lines)
    started = [t for t, text in lines if "stopping priority group 5 " in text]
    progress = [(t, PROGRESS.search(text)) for t, text in lines if PROGRESS.search(text)]
    assert len(started) == 1 and len(progress) == 2, [text for _, text in lines]
    # The group of "slow" (and "worker", whose Pod went at once), both slow Pods left.
    assert [m.groups()[:2] for _, m in progress] == [("5", "2"), ("5", "2")]
    assert [int(m.group(3)) for _, m in progress] == [5, 10]
    # Printed as the wait went on, 5 s apart, not at the end.
    (t1, _), (t2, _) = progress
    assert 4.5 <= t1 - started[0] <= 6.5 and 4.5 <= t2 - t1 <= 6
    # No progress line for the groups whose Pods went within 5 s.
    assert not [text for _, text in lines if "pods left" in text and "group 5:" not in text]


def test_failed_pods_do_not_count(release, migration, pg):
    """A Pod in phase Failed stays after its Deployment is scaled to 0 (nothing deletes
    it); the group does not wait for it."""
    k8s = release
    cfg, env, db = migration
    with_settings(cfg, stopPodsTimeout=20)  # counted, it would hold the group 20 s and fail
    failed = k8s.pods_of("api")[0]["metadata"]["name"]
    k8s.set_pod_phase(failed, "Failed")
    k8s.wait_for(lambda: len(k8s.pods_of("api")) == SCALES["api"] + 1, timeout=10,
                 what="the replacement of the Failed pod")
    r = run(["migrate", "--config", str(cfg)], env=env, timeout=120)
    assert r.rc == 0, r.err.decode()
    assert migrated(pg, db)
    # Still there when the next group was scaled down, and still there now.
    lives = pod_lives(k8s)
    worker_down = scale_downs(k8s)["worker"]
    assert lives[failed][3] is not None and lives[failed][3] < worker_down
    assert lives[failed][2] is None and k8s.get("pods", failed) is not None
    assert counting_at(lives, {"api", "web"}, worker_down) == []


def slow_to_stop(k8s, name, priority):
    """A Deployment of the release whose one Pod takes 60 s (times SLOWDOWN) to go; returns
    the Pod's name."""
    k8s.put(deployment(name, 1, annotations={STOP_DELAY: str(60 * SLOWDOWN)}))
    k8s.put(eds(name, 1, priority=priority))
    k8s.wait_for(lambda: len(k8s.pods_of(name)) == 1, timeout=10, what=f"{name}'s pod")
    return k8s.pods_of(name)[0]["metadata"]["name"]


def test_a_pod_failing_during_the_wait_stops_counting(release, migration):
    """A terminating Pod that ends Failed counts no longer from that event on: the wait
    ends there, not when the Pod object goes."""
    k8s = release
    cfg, env, _ = migration
    with_settings(cfg, stopPodsTimeout=60)
    pod = slow_to_stop(k8s, "sticky", priority=10)
    p, lines, reader = start_migrate(cfg, env)
    try:
        k8s.wait_for(lambda: (k8s.get("pods", pod) or {}).get("metadata", {})
                     .get("deletionTimestamp"), timeout=30, what="sticky's pod terminating")
        time.sleep(1.0)  # the group's other Pods are gone: chartreuse waits for this one
        assert "worker" not in scale_downs(k8s)
        k8s.set_pod_phase(pod, "Failed")
        rc, lines = finish(p, lines, reader, timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert rc == 0, "\n".join(text for _, text in lines)
    lives = pod_lives(k8s)
    failed_at = lives[pod][3]
    assert failed_at is not None and lives[pod][2] is None  # Failed, never deleted
    assert failed_at < scale_downs(k8s)["worker"]


def test_stop_deadline_fails_clearly_and_keeps_the_way_back(release, migration, pg):
    """stopPodsTimeout: a Pod that does not go in time fails the run before Alembic, naming
    the group, the count and the Pod. Every Deployment that was ever at 0 carried the mark
    meanwhile; the pods are started again, and what can't be (a lasting 403 on api's
    scale) is left marked, with the restore command printed; that command heals it."""
    k8s = release
    cfg, env, db = migration
    with_settings(cfg, stopPodsTimeout=2)
    pod = slow_to_stop(k8s, "stuck", priority=5)
    # api's first scale (to 0) goes through; the start's is refused.
    k8s.fault("PATCH", r"/deployments/api/scale$", status=403, times=None, after=1)
    t0 = time.monotonic()
    r = run(["migrate", "--config", str(cfg)], env=env, timeout=120)
    elapsed = time.monotonic() - t0
    assert r.rc == 1
    err = r.err.decode()
    assert re.search(r"error: priority group 5: 1 pods still running after 2 s "
                     rf"\(stopPodsTimeout\): {re.escape(pod)}$", err, re.M), err
    assert elapsed < 30 * SLOWDOWN, elapsed  # the Pod takes 60 s times SLOWDOWN
    assert "not run: the pods could not be stopped" in err
    assert not migrated(pg, db)
    m = re.search(r"bring them back with: (chartreuse restore .*)$", err, re.M)
    assert m, err
    assert m.group(1) == f"chartreuse restore --release {RELEASE} --namespace default"
    # The groups after the deadline were not touched; api, refused its start, stays at 0
    # with the marks; everything else is back.
    downs = scale_downs(k8s)  # every Deployment at 0 carried the mark
    assert set(downs) == {"api", "web", "worker", "stuck"}
    api = k8s.get("deployments", "api")
    assert api["spec"]["replicas"] == 0 and annotations(api)[STOPPED] == "true"
    assert RECORDED in annotations(k8s.get("horizontalpodautoscalers", "api"))
    for name in ("web", "worker", "cron"):
        d = k8s.get("deployments", name)
        assert d["spec"]["replicas"] == SCALES[name] and STOPPED not in annotations(d)
    # The printed command, as printed.
    k8s.clear_faults()
    kubeconfig = env["KUBECONFIG"]
    r = run(shlex.split(m.group(1))[1:], env={"KUBECONFIG": kubeconfig}, timeout=60)
    assert r.rc == 0, r.err.decode()
    assert {n: k8s.get("deployments", n)["spec"]["replicas"] for n in SCALES} == SCALES
    assert k8s.get("horizontalpodautoscalers", "api")["spec"]["behavior"] == BEHAVIOR
    assert not [n for n in list(SCALES) + ["stuck"]
                if STOPPED in annotations(k8s.get("deployments", n))]


# --- restore: which cluster -------------------------------------------------------------

def strand(k8s):
    """What a run killed after the stop leaves: every Deployment at 0 and marked, the HPAs
    paused with their behaviour recorded (as pods.c writes them)."""
    for name in SCALES:
        k8s.patch("deployments", name, {"metadata": {"annotations": {STOPPED: "true"}}})
        k8s.scale("deployments", name, 0)
    for name, behavior in (("api", BEHAVIOR), ("web", None)):
        paused = dict(behavior or {}, scaleUp={"selectPolicy": "Disabled"})
        k8s.patch("horizontalpodautoscalers", name, {
            "metadata": {"annotations": {RECORDED: json.dumps(behavior)}},
            "spec": {"behavior": paused}})


def healed(k8s):
    return {n: k8s.get("deployments", n)["spec"]["replicas"] for n in SCALES} == SCALES \
        and not [n for n in SCALES if STOPPED in annotations(k8s.get("deployments", n))] \
        and k8s.get("horizontalpodautoscalers", "api")["spec"].get("behavior") == BEHAVIOR \
        and "behavior" not in k8s.get("horizontalpodautoscalers", "web")["spec"] \
        and not [n for n in ("api", "web")
                 if RECORDED in annotations(k8s.get("horizontalpodautoscalers", n))]


@pytest.fixture
def two_contexts(release, tmp_path):
    """A kubeconfig whose current context ("intruder") has a token the cluster refuses,
    and a context "sim" that works."""
    k8s = release
    path = k8s.kubeconfig(tmp_path / "two-contexts", context="sim")
    kc = yaml.safe_load(path.read_text())
    kc["users"].append({"name": "intruder", "user": {"token": "not-a-valid-token"}})
    kc["contexts"].append({"name": "intruder", "context": {
        "cluster": kc["contexts"][0]["context"]["cluster"], "user": "intruder",
        "namespace": "default"}})
    kc["current-context"] = "intruder"
    path.write_text(yaml.safe_dump(kc))
    return k8s, path


def test_restore_takes_kubeconfig_and_kube_context(two_contexts, tmp_path):
    k8s, kubeconfig = two_contexts
    strand(k8s)
    elsewhere = {"KUBECONFIG": str(tmp_path / "no-such-kubeconfig"),
                 "HELM_KUBECONTEXT": "", "HELM_NAMESPACE": ""}
    restore = ["restore", "--release", RELEASE, "--kubeconfig", str(kubeconfig)]
    # --kubeconfig is read instead of KUBECONFIG; without --kube-context, its current
    # context: refused, one error line, nothing changed.
    r = run(restore, env=elsewhere, timeout=60)
    assert r.rc == 1
    assert len([l for l in r.err_lines if "error:" in l]) == 1, r.err_lines
    assert "401" in r.err.decode()
    assert not healed(k8s)
    # A context that does not exist: named.
    r = run(restore + ["--kube-context", "nowhere"], env=elsewhere, timeout=60)
    assert r.rc == 1 and r.err_lines == [
        f'chartreuse: error: kubernetes: context "nowhere" is not defined in {kubeconfig}']
    # --kube-context picks the working one; --kube-context=CTX too, and twice is harmless.
    for how in (["--kube-context", "sim"], ["--kube-context=sim"]):
        r = run(restore + how, env=elsewhere, timeout=60)
        assert r.rc == 0, r.err.decode()
        assert healed(k8s)


def test_restore_under_helm_takes_helm_s_context_and_namespace(two_contexts):
    """`helm chartreuse restore -n NS --kube-context CTX`: Helm keeps those two flags and
    hands them over as HELM_NAMESPACE and HELM_KUBECONTEXT; the flags of chartreuse win."""
    k8s, kubeconfig = two_contexts
    strand(k8s)
    restore = ["restore", "--release", RELEASE]
    # HELM_NAMESPACE names a namespace that does not exist: nothing done there, and (issue
    # 10; it was exit 0) that is no success.
    helm = {"KUBECONFIG": str(kubeconfig), "HELM_KUBECONTEXT": "sim",
            "HELM_NAMESPACE": "elsewhere"}
    k8s.request_log.clear()
    r = run(restore, env=helm, timeout=60)
    assert r.rc == 4 and "no namespace named elsewhere" in r.err.decode()
    assert not healed(k8s)
    assert {(rec.method, rec.path) for rec in k8s.request_log} == \
        {("GET", "/apis/wiremind.io/v1/namespaces/elsewhere/expecteddeploymentscales"),
         ("GET", "/api/v1/namespaces/elsewhere")}
    r = run(restore + ["--namespace", "default"], env=helm, timeout=60)
    assert r.rc == 0, r.err.decode()
    assert healed(k8s)
    # --kube-context wins over HELM_KUBECONTEXT.
    strand(k8s)
    r = run(restore + ["--kube-context", "intruder"], env=dict(helm, HELM_NAMESPACE="default"),
            timeout=60)
    assert r.rc == 1 and "401" in r.err.decode()
    r = run(restore, env=dict(helm, HELM_NAMESPACE="default"), timeout=60)
    assert r.rc == 0, r.err.decode()
    assert healed(k8s)


def test_restore_help_names_every_option():
    r = run(["restore", "--help"])
    assert r.rc == 0
    for option in ("--release", "--namespace", "--kube-context", "--kubeconfig",
                   "HELM_KUBECONTEXT", "HELM_NAMESPACE"):
        assert option in r.text
    r = run(["restore", "--release", RELEASE, "--kube-context"])
    assert r.rc == 2 and r.err_lines == ["chartreuse: error: --kube-context needs a value"]


def test_restore_leaves_a_deployment_it_did_not_stop_alone(release, tmp_path):
    """A restore with nothing to heal must not scale a busy service back to its expected
    scale (its HPA made it 5): only the Deployments marked stopped are scaled."""
    k8s = release
    strand(k8s)
    k8s.patch("deployments", "web", {"metadata": {"annotations": {STOPPED: None}}})
    k8s.scale("deployments", "web", 5)   # not chartreuse's: scaled by its HPA meanwhile
    kubeconfig = job_kubeconfig(k8s, tmp_path / "kubeconfig", JOB)
    k8s.request_log.clear()
    for _ in range(2):   # and a second restore changes nothing more
        r = run(["restore", "--release", RELEASE, "--namespace", "default"],
                env={"KUBECONFIG": str(kubeconfig)}, timeout=60)
        assert r.rc == 0, r.err.decode()
        assert k8s.get("deployments", "web")["spec"]["replicas"] == 5
        assert {n: k8s.get("deployments", n)["spec"]["replicas"]
                for n in SCALES if n != "web"} == {n: s for n, s in SCALES.items() if n != "web"}
        assert not [n for n in SCALES if STOPPED in annotations(k8s.get("deployments", n))]
        # web's HPA was paused with the others: its behaviour comes back all the same.
        assert "behavior" not in k8s.get("horizontalpodautoscalers", "web")["spec"]
    assert "web" not in [n for n, _, _ in scale_patches(k8s)]
    assert sorted(n for n, _, _ in scale_patches(k8s)) == ["api", "cron", "worker"]
    assert outside_the_role(k8s) == []


# --- an HPA changed while it is paused ---------------------------------------------------

PAUSED = "chartreuse.wiremind.io/hpa-behavior-paused"
CHART_DOWN = {"stabilizationWindowSeconds": 30,
              "policies": [{"type": "Percent", "value": 50, "periodSeconds": 30}]}


def test_a_chart_change_made_while_paused_is_kept_by_restore(release, migration, tmp_path):
    """Before-deployment mode: the pre-upgrade migration pauses the HPAs and leaves them
    paused, Helm applies the new chart version (here it changes both HPAs' scaleDown), and
    the post-upgrade `chartreuse restore` takes back only chartreuse's own change: the
    chart's scaleDown stays, scaleUp.selectPolicy is what it was (Max for api, none for
    web, whose scaleUp chartreuse had created)."""
    k8s = release
    cfg, env, _ = migration
    with_settings(cfg, upgradeBeforeDeployment=True)
    api_before = dict(BEHAVIOR, scaleUp={"selectPolicy": "Max",
                                         "stabilizationWindowSeconds": 15})
    k8s.patch("horizontalpodautoscalers", "api", {"spec": {"behavior": api_before}})
    r = run(["migrate", "--config", str(cfg)], env=dict(env, HELM_IS_INSTALL="false"),
            timeout=120)
    assert r.rc == 0, r.err.decode()
    for name, was in (("api", api_before), ("web", None)):
        h = k8s.get("horizontalpodautoscalers", name)
        assert h["spec"]["behavior"]["scaleUp"]["selectPolicy"] == "Disabled", name
        assert json.loads(annotations(h)[RECORDED]) == was
    # The new chart version, as Helm's three-way merge patches it in.
    for name in ("api", "web"):
        k8s.patch("horizontalpodautoscalers", name,
                  {"spec": {"behavior": {"scaleDown": CHART_DOWN}}})
    kubeconfig = job_kubeconfig(k8s, tmp_path / "kubeconfig", JOB)
    for attempt in range(2):  # and a second restore changes nothing
        r = run(["restore", "--release", RELEASE, "--namespace", "default"],
                env={"KUBECONFIG": str(kubeconfig)}, timeout=60)
        assert r.rc == 0, r.err.decode()
        kept = re.findall(r"HPA (\S+): its behaviour changed since it was paused", r.err.decode())
        assert sorted(kept) == (["api", "web"] if attempt == 0 else []), r.err.decode()
        api = k8s.get("horizontalpodautoscalers", "api")
        assert api["spec"]["behavior"] == dict(api_before, scaleDown=CHART_DOWN)
        web = k8s.get("horizontalpodautoscalers", "web")
        assert web["spec"]["behavior"] == {"scaleDown": CHART_DOWN}
        for h in (api, web):
            assert not {RECORDED, PAUSED} & set(annotations(h)), h["metadata"]["name"]
    assert {n: k8s.get("deployments", n)["spec"]["replicas"] for n in SCALES} == SCALES


def test_a_change_between_the_read_and_the_pause_is_read_again(release, migration):
    """The pause is written with the resourceVersion the HPA was read at: a change that
    lands in between (held here by delaying the PATCH) makes it a 409, the HPA is read
    again, and the behaviour recorded, then given back, is the changed one."""
    k8s = release
    cfg, env, _ = migration
    held = k8s.fault("PATCH", r"/horizontalpodautoscalers/api$", delay=2, times=1)
    changed = dict(BEHAVIOR, scaleDown=CHART_DOWN)

    def change_meanwhile():
        deadline = time.monotonic() + 60
        while not held.hits and time.monotonic() < deadline:
            time.sleep(0.01)
        k8s.patch("horizontalpodautoscalers", "api", {"spec": {"behavior": changed}})
    t = threading.Thread(target=change_meanwhile)
    t.start()
    try:
        r = run(["migrate", "--config", str(cfg)], env=env, timeout=120)
    finally:
        t.join()
    assert r.rc == 0, r.err.decode()
    assert outside_the_role(k8s) == []
    # Read again by listing it by name: the Role grants list on HPAs, not get.
    calls = [(rec.method, rec.status) for rec in k8s.request_log
             if rec.path.endswith("/horizontalpodautoscalers/api")
             or (rec.path.endswith("/horizontalpodautoscalers")
                 and rec.query.get("fieldSelector") == "metadata.name=api")]
    assert calls[0] == ("PATCH", 409), calls
    assert calls[1] == ("GET", 200), calls
    paused = [h for _, h in k8s.history("horizontalpodautoscalers", "api")
              if RECORDED in annotations(h)]
    assert paused and json.loads(annotations(paused[0])[RECORDED]) == changed
    api = k8s.get("horizontalpodautoscalers", "api")
    assert api["spec"]["behavior"] == changed
    assert not {RECORDED, PAUSED} & set(annotations(api))


# --- streams cut midway, refusals that look like failed tests ----------------------------------

@pytest.mark.parametrize("cut", ["event", "chunk", "header"])
def test_a_pod_watch_cut_midway_is_resumed(release, migration, pg, cut):
    """The Pod watch of the stop breaks inside its first event, inside a chunk, or inside
    its headers: the wait resumes from what it had seen and the migration completes."""
    k8s = release
    cfg, env, db = migration
    armed = k8s.fault("GET", r"/pods$", query="watch=", cut=cut)
    r = run(["migrate", "--config", str(cfg)], env=env, timeout=120)
    assert r.rc == 0, r.err.decode()
    assert armed.hits == 1
    assert [rec.fault for rec in k8s.request_log if rec.fault] == [f"cut {cut}"]
    watches = k8s.request_log.filter("GET", r"/pods$", watch=True)
    assert len(watches) >= 2, "the cut watch was followed by another"
    assert migrated(pg, db)
    for name, scale in SCALES.items():
        assert k8s.get("deployments", name)["spec"]["replicas"] == scale
        assert STOPPED not in annotations(k8s.get("deployments", name))


def test_an_admission_refusal_of_the_marks_removal_is_not_taken_for_no_mark(release,
                                                                             migration, pg):
    """A 422 to the JSON patch that removes the stopped mark is a refusal (a validating
    admission policy here), not a failed test: the start fails, says so, keeps the mark,
    and `restore` brings the rest back once the policy lets it."""
    k8s = release
    cfg, env, db = migration
    k8s.admission_deny("PATCH", r"/deployments/api$", reason="annotations are frozen",
                       query=None, times=None, after=1)  # the mark goes on, not off
    r = run(["migrate", "--config", str(cfg)], env=env, timeout=120)
    err = r.err.decode()
    assert r.rc != 0, err
    assert "ValidatingAdmissionPolicy 'chartreuse-test-policy'" in err, err
    assert "chartreuse restore --release" in err, err
    d = k8s.get("deployments", "api")
    assert d["spec"]["replicas"] == SCALES["api"], "started, only the mark stayed"
    assert annotations(d).get(STOPPED) == "true"
    k8s.clear_faults()
    r = run(["restore", "--release", RELEASE, "--namespace", "default"],
            env={"KUBECONFIG": env["KUBECONFIG"]}, timeout=120)
    assert r.rc == 0, r.err.decode()
    assert STOPPED not in annotations(k8s.get("deployments", "api"))


# --- names that go into paths -----------------------------------------------------------------

def test_a_deployment_name_that_is_a_path_reaches_no_path(release, migration, pg):
    """An ExpectedDeploymentScale's deploymentName goes into URL paths: one that is no
    Deployment name ("../" and all) is skipped with a warning, and no request leaves the
    release's own Deployments, HPAs and Pods."""
    k8s = release
    cfg, env, db = migration
    k8s.put({"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "victim", "namespace": "default"}, "data": {"a": "b"}})
    evil = "../../../../api/v1/namespaces/default/configmaps/victim"
    k8s.put(eds("evil", 1, deployment=evil))
    r = run(["migrate", "--config", str(cfg)], env=env, timeout=120)
    assert r.rc == 0, r.err.decode()
    err = r.err.decode()
    assert f'ExpectedDeploymentScale evil: deploymentName "{evil}" is not a valid name' in err
    assert not [rec for rec in k8s.request_log if "configmaps" in rec.path or ".." in rec.path]
    assert k8s.get("configmaps", "victim")["data"] == {"a": "b"}
    assert migrated(pg, db)


def test_a_namespace_that_is_no_namespace_name_is_refused_before_any_request(k8s, tmp_path):
    r = run(["restore", "--release", RELEASE, "--namespace", "default/../kube-system"],
            env={"KUBECONFIG": str(k8s.kubeconfig(tmp_path / "kc"))}, timeout=60)
    assert r.rc != 0
    assert r.err_lines == ['chartreuse: error: kubernetes: the namespace '
                           '"default/../kube-system" is not a valid name: at most 63 lower-case '
                           "letters, digits and '-', starting and ending with a letter or digit "
                           "(a DNS-1123 label)"]
    assert not [rec for rec in k8s.request_log if "/namespaces/" in rec.path]


# --- an exec credential plugin that asks on the terminal ---------------------------------------

ASKING_PLUGIN = """#!/usr/bin/python3
import json, os
tty = os.open("/dev/tty", os.O_RDWR)
os.write(tty, b"token please: ")
token = b""
while not token.endswith(b"\\n"):
    token += os.read(tty, 1)
token = token.decode().strip()
print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                  "status": {"token": token}}))
"""


def run_on_a_terminal(argv, env, answer, prompt=b"token please: ", timeout=60):
    """argv run as the foreground job of a new terminal (a pty); `answer` is typed when
    `prompt` shows. Returns (exit status, everything the terminal showed)."""
    import pty
    import select
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    seen, typed = b"", False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                seen += data
            if not typed and prompt in seen:
                os.write(fd, answer + b"\n")
                typed = True
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status), seen
        while time.monotonic() < deadline:  # the terminal closed: the child is ending
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status), seen
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return None, seen
    finally:
        os.close(fd)


def test_an_exec_plugin_that_asks_on_the_terminal_gets_its_answer(release, tmp_path):
    """kubectl lets an exec plugin prompt on the terminal (interactiveMode). In a process
    group of its own the plugin would be stopped by SIGTTIN as it reads, and restore would
    hang; in chartreuse's it reads the answer typed."""
    from conftest import BIN, WRAPPER
    k8s = release
    plugin = tmp_path / "ask-token"
    plugin.write_text(ASKING_PLUGIN)
    plugin.chmod(0o755)
    kc = tmp_path / "kubeconfig"
    kc.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "sim",
        "clusters": [{"name": "sim", "cluster": {"server": k8s.url,
                                                 "certificate-authority": k8s.ca_path}}],
        "contexts": [{"name": "sim", "context": {"cluster": "sim", "user": "asks"}}],
        "users": [{"name": "asks", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
            "interactiveMode": "IfAvailable"}}}]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    env["KUBECONFIG"] = str(kc)
    argv = [*WRAPPER, BIN, "restore", "--release", RELEASE, "--namespace", "default"]
    if WRAPPER:
        import shutil
        argv[0] = shutil.which(argv[0])
    rc, shown = run_on_a_terminal(argv, env, k8s.token.encode())
    assert rc == 0, shown.decode(errors="replace")
    assert b"token please: " in shown
    users = {r.user for r in k8s.request_log if "/namespaces/default/" in r.path}
    assert users == {k8s.tokens[k8s.token]}, "every request with the token typed"


def test_the_log_ends_with_what_was_applied_and_how_long_the_service_was_down(
        release, migration, pg):
    cfg, env, db = migration
    r = run(["migrate", "--config", str(cfg)], env=env, timeout=120)
    assert r.rc == 0, r.err.decode()
    lines = r.err.decode().splitlines()
    down = [ln for ln in lines if "the release's Deployments were down for" in ln]
    assert len(down) == 1 and re.search(r"down for \d+\.\d s$", down[0]), lines
    assert re.fullmatch(r"chartreuse: main: migrated \(applied lin0001, lin0002; alembic "
                        r"took \d+\.\d s\)", lines[-1]), lines
    assert lines.index(down[0]) > max(i for i, ln in enumerate(lines) if "started" in ln)


def test_each_step_is_an_event_on_the_pod_and_on_each_expected_deployment_scale(
        release, migration, pg):
    """What `kubectl describe` shows of a migration: the Job's Pod (POD_NAME and POD_UID
    from the downward API) and each ExpectedDeploymentScale get an Event per step."""
    k8s = release
    cfg, env, db = migration
    env = dict(env, POD_NAME="shop-chartreuse-upgrade-abcde", POD_UID="1234-uid")
    r = run(["migrate", "--config", str(cfg)], env=env, timeout=120)
    assert r.rc == 0, r.err.decode()
    assert "Event" not in r.err.decode()  # none failed
    events = sorted(k8s.objects("events"), key=lambda e: e["metadata"]["name"])
    on = {}
    for e in events:
        ref = e["involvedObject"]
        assert e["metadata"]["namespace"] == ref["namespace"] == "default"
        assert e["type"] == "Normal" and e["source"] == {"component": "chartreuse"}
        on.setdefault((ref["kind"], ref["name"]), []).append(e["reason"])
    pod = on.pop(("Pod", "shop-chartreuse-upgrade-abcde"))
    assert pod == ["Stopping", "Stopped"] * 3 + ["Migrating", "Migrated", "Started"], pod
    assert {name for _, name in on} == set(GROUPS)
    assert all(reasons == ["Stopping", "Stopped", "Started"] for reasons in on.values()), on
    assert all(e["involvedObject"].get("uid") for e in events
               if e["involvedObject"]["kind"] == "ExpectedDeploymentScale")
    migrating = [e["message"] for e in events if e["reason"] == "Migrating"]
    assert migrating == ["database main: alembic upgrade head (lin0001, lin0002)"]


def test_restore_records_restored_events_for_what_it_brought_back(release, migration):
    k8s = release
    cfg, env, db = migration
    strand(k8s)
    k8s.patch("deployments", "web", {"metadata": {"annotations": {STOPPED: None}}})
    env = dict(env, POD_NAME="shop-chartreuse-restore-xyz")
    r = run(["restore", "--release", RELEASE, "--namespace", "default"], env=env)
    assert r.rc == 0, r.err.decode()
    events = [(e["involvedObject"]["kind"], e["involvedObject"]["name"], e["reason"])
              for e in k8s.objects("events")]
    assert ("Pod", "shop-chartreuse-restore-xyz", "Restored") in events
    # web was not chartreuse's to bring back: no Event says it was.
    assert sorted(n for kind, n, reason in events if kind == "ExpectedDeploymentScale") == \
        sorted(n for n in GROUPS if n != "web")
    k8s.request_log.clear()
    r = run(["restore", "--release", RELEASE, "--namespace", "default"], env=env)
    assert r.rc == 0 and not [x for x in k8s.request_log if x.method == "POST"]
