"""A fault at every Kubernetes API call of a migration's stop/start flow, one call at a
time: the flow either completes or fails with a clear error, and it never leaves a
Deployment at 0 replicas (or an HPA paused) without the record that `chartreuse restore`
uses to bring it back.

The calls are those a clean run makes (learnt from the simulator's request log), so the
matrix follows the flow as it changes. Each call gets, in turn: one 500 (retried: the flow
must complete), one dropped connection (same), and a 403 that never goes away (the flow
must fail clearly, safely)."""
import re
import uuid

import pytest
import yaml

import alembic_projects as ap
from conftest import WRAPPER, run
from k8s_sim import K8sSim
from rbac_helpers import job_kubeconfig
from test_pods import BEHAVIOR, GROUPS, RELEASE, SCALES, deployment, eds, hpa

STOPPED = "chartreuse.wiremind.io/stopped"
RECORDED = "chartreuse.wiremind.io/hpa-behavior-before"


@pytest.fixture(scope="module")
def flow(pg, tmp_path_factory):
    """A database with one revision to apply, and the config of a migration of it."""
    tmp = tmp_path_factory.mktemp("faults")
    db = "faults_" + uuid.uuid4().hex[:8]
    pg.create_database(db)
    project = ap.linear(tmp / "project", 1)
    cfg = tmp / "config.yaml"
    cfg.write_text(yaml.safe_dump({
        "release": RELEASE, "namespace": "default", "stopPods": True,
        "databases": [{"name": "main", "alembicDirectory": str(project.path)}]}))
    yield pg, db, cfg, tmp
    pg.drop_database(db)


def fresh_release():
    sim = K8sSim(pod_start_delay=0.05, pod_stop_delay=0.05).start()
    for name, prio in GROUPS.items():
        sim.put(deployment(name, SCALES[name]))
        sim.put(eds(name, SCALES[name], priority=prio))
    sim.put(hpa("api", BEHAVIOR))
    sim.put(hpa("web", None))
    sim.wait_for(lambda: len(sim.objects("pods")) == sum(SCALES.values()), timeout=10,
                 what="the release's pods")
    return sim


def migrate(flow, sim):
    pg, db, cfg, tmp = flow
    pg.psql(db, "DROP TABLE IF EXISTS alembic_version, t_lin0001")
    kubeconfig = job_kubeconfig(sim, tmp / f"kubeconfig-{uuid.uuid4().hex[:6]}", cfg)
    return run(["migrate", "--config", str(cfg)], timeout=120,
               env={"CHARTREUSE_DB_0_URL": pg.url(db), "KUBECONFIG": str(kubeconfig)})


def calls_of_a_clean_run(flow):
    sim = fresh_release()
    try:
        r = migrate(flow, sim)
        assert r.rc == 0, r.err.decode()
        calls, seen = [], {}
        for rec in sim.request_log:
            key = (rec.method, rec.path, rec.watch)
            calls.append((rec.method, rec.path, rec.watch, seen.get(key, 0)))
            seen[key] = seen.get(key, 0) + 1
        return calls
    finally:
        sim.stop()


def inject(sim, call, **fault):
    method, path, watch, nth = call
    return sim.fault(method, "^" + re.escape(path) + "$",
                     query="watch=" if watch else r"^(?!.*watch=)", after=nth, **fault)


def assert_safe(sim, what):
    """Every Deployment at its expected scale, or at 0 with the stop recorded; every HPA
    with its behaviour, or paused with the behaviour recorded."""
    for name, scale in SCALES.items():
        d = sim.get("deployments", name)
        marks = d["metadata"].get("annotations") or {}
        assert d["spec"]["replicas"] == scale or STOPPED in marks, \
            f"{what}: {name} at {d['spec']['replicas']} with no record of the stop"
    for name in ("api", "web"):
        h = sim.get("horizontalpodautoscalers", name)
        scale_up = (h["spec"].get("behavior") or {}).get("scaleUp") or {}
        if scale_up.get("selectPolicy") == "Disabled":
            assert RECORDED in (h["metadata"].get("annotations") or {}), \
                f"{what}: HPA {name} paused with no record of its behaviour"


def assert_completed(sim, r, what):
    assert r.rc == 0, f"{what}: {r.err.decode()}"
    for name, scale in SCALES.items():
        d = sim.get("deployments", name)
        assert d["spec"]["replicas"] == scale, what
        assert STOPPED not in (d["metadata"].get("annotations") or {}), what
    assert sim.get("horizontalpodautoscalers", "api")["spec"]["behavior"] == BEHAVIOR, what


def kind_of(call):
    """"PATCH deployments/scale", "GET pods (watch)": what sets the code path a fault takes."""
    method, path, watch, _ = call
    parts = path.split("/namespaces/", 1)[-1].split("/")[1:]  # plural[, name[, sub]]
    return (method, parts[0], len(parts) > 1, parts[2] if len(parts) > 2 else None, watch)


def one_of_each_kind(calls):
    seen, out = set(), []
    for call in calls:
        if kind_of(call) not in seen:
            seen.add(kind_of(call))
            out.append(call)
    return out


def each_call(flow, **fault):
    calls = calls_of_a_clean_run(flow)
    assert len([c for c in calls if c[0] == "PATCH"]) >= 3 * len(SCALES)
    if WRAPPER:  # valgrind: every kind of call once; the other passes fault every call
        calls = one_of_each_kind(calls)
    for call in calls:
        sim = fresh_release()
        try:
            f = inject(sim, call, **fault)
            r = migrate(flow, sim)
            yield call, f, r, sim
        finally:
            sim.stop()


def name(call):
    method, path, watch, nth = call
    return f"{method} {path}{' (watch)' if watch else ''} #{nth + 1}"


def test_a_transient_error_at_any_call_is_retried(flow):
    for call, f, r, sim in each_call(flow, status=500, times=1):
        assert_completed(sim, r, f"500 at {name(call)}")
        assert f.hits == 1 or call[2], f"{name(call)} was not made again"


def test_a_dropped_connection_at_any_call_is_retried(flow):
    for call, f, r, sim in each_call(flow, drop=True, times=1):
        assert_completed(sim, r, f"dropped connection at {name(call)}")


def test_a_lasting_refusal_at_any_call_fails_clearly_and_safely(flow):
    pg, db, _, _ = flow
    for call, f, r, sim in each_call(flow, status=403, times=None):
        what = f"403 at {name(call)}"
        assert_safe(sim, what)
        if f.hits == 0:  # a watch the faulted run did not need
            continue
        err = r.err.decode()
        if call[1].endswith("/events"):  # best effort: said, and the run goes on
            assert r.rc == 0, f"{what}: exit {r.rc}: {err}"
            assert "could not be recorded" in err and "goes on without Events" in err, err
            continue
        if call[1].endswith("/selfsubjectaccessreviews"):  # a question the server refused
            assert r.rc == 0, f"{what}: exit {r.rc}: {err}"
            assert "its permissions are not checked beforehand" in err, err
            continue
        assert r.rc == 1, f"{what}: exit {r.rc}: {err}"
        errors = [l for l in err.splitlines() if "error:" in l]
        assert any(f"{call[0]} {call[1]}" in l and "403" in l for l in errors), \
            f"{what}: the failed call is not named: {err}"
        stored = pg.psql(db, "SELECT version_num FROM alembic_version") \
            if pg.psql(db, "SELECT to_regclass('alembic_version')")[0][0] else []
        down = [n for n in SCALES if sim.get("deployments", n)["spec"]["replicas"] == 0]
        if down:
            assert "chartreuse restore --release" in err, f"{what}: no restore command"
        assert stored in ([], [("lin0001",)]), what
