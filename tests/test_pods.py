"""`chartreuse migrate` stopping and starting the release's Deployments through the
simulated API server (tests/k8s_sim), around a real migration on the real PostgreSQL."""
import json
import time
import uuid
from functools import partial

import pytest
import yaml

import alembic_projects as ap
import k8s_objects
from conftest import run

RELEASE = "shop"
GROUPS = {"api": 10, "web": 10, "worker": 5, "cron": 0}  # deployment -> priority
SCALES = {"api": 3, "web": 2, "worker": 1, "cron": 1}
BEHAVIOR = {"scaleDown": {"stabilizationWindowSeconds": 120,
                          "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}


deployment = partial(k8s_objects.deployment, release=RELEASE)
eds = partial(k8s_objects.eds, release=RELEASE)
hpa = k8s_objects.hpa


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
    kubeconfig = k8s.kubeconfig(tmp_path / "kubeconfig")
    cfg = {"release": RELEASE, "namespace": "default", "stopPods": True,
           "databases": [{"name": "main", "alembicDirectory": str(project.path)}]}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {"CHARTREUSE_DB_0_URL": pg.url(name), "KUBECONFIG": str(kubeconfig)}
    yield path, env, name
    pg.drop_database(name)


def scale_patches(k8s):
    return [(r.path.split("/")[-2], json.loads(r.body)["spec"]["replicas"], r.time)
            for r in k8s.request_log if r.method == "PATCH" and r.path.endswith("/scale")]


def test_stop_by_priority_then_migrate_then_start(release, migration, pg):
    k8s = release
    cfg, env, db = migration
    r = run(["migrate", "--config", str(cfg)], env=env, timeout=120)
    assert r.rc == 0, r.err.decode()
    patches = scale_patches(k8s)
    downs = [(n, t) for n, rep, t in patches if rep == 0]
    ups = {n: rep for n, rep, t in patches if rep != 0}
    # Highest priority first; a group starts only once the previous group's pods are gone.
    order = [n for n, _ in downs]
    assert set(order[:2]) == {"api", "web"} and order[2:] == ["worker", "cron"]
    assert ups == SCALES
    # Alembic ran while everything was down.
    rows = pg.psql(db, "SELECT version_num FROM alembic_version")
    assert [r[0] for r in rows] == ["lin0002"]
    # Scales and HPA behaviours are back exactly; no marks left.
    for name, scale in SCALES.items():
        d = k8s.get("deployments", name)
        assert d["spec"]["replicas"] == scale
        assert "chartreuse.wiremind.io/stopped" not in d["metadata"].get("annotations", {})
    assert k8s.get("horizontalpodautoscalers", "api")["spec"]["behavior"] == BEHAVIOR
    web = k8s.get("horizontalpodautoscalers", "web")
    assert "behavior" not in web["spec"]
    assert "chartreuse.wiremind.io/hpa-behavior-before" not in \
        web["metadata"].get("annotations", {})


def test_group_waits_for_its_pods(release, migration):
    k8s = release
    cfg, env, _ = migration
    k8s.pod_stop_delay = 1.0
    r = run(["migrate", "--config", str(cfg)], env=env, timeout=120)
    assert r.rc == 0, r.err.decode()
    downs = [(n, t) for n, rep, t in scale_patches(k8s) if rep == 0]
    first_group_end = max(t for n, t in downs if n in ("api", "web"))
    worker = [t for n, t in downs if n == "worker"][0]
    assert worker - first_group_end >= 0.9  # the api/web pods took 1 s to go


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
    assert not [x for x in k8s.request_log if x.method in ("PATCH", "PUT", "POST")]
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
    import os
    import signal
    import subprocess
    from conftest import BIN
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
        kubeconfig = k8s.kubeconfig(tmp_path / "kubeconfig")
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
