#!/usr/bin/python3
"""Benchmark stopping and starting a release's pods around a migration.

    python3 scripts/bench-pods.py        (or: make bench-pods)

The release: 60 Deployments (one Pod each) in 3 priority groups of 20, a third of them
under an HPA, in the simulated API server of the tests (tests/k8s_sim), whose Pods take
1 s to terminate. `chartreuse migrate` migrates a one-revision Alembic project on a
throw-away PostgreSQL (tests/pgserver.py), so it stops the groups one after the other and
starts everything again.

The floor: each group has to wait for its Pods, 3 x 1 s. The time measured is that of the
stop phase (from chartreuse's first API request to its line saying Alembic starts) plus
the start phase (from its first API request after Alembic to its line saying the
Deployments are started), so Alembic's own time is left out; the simulator runs in this
process, so its request log and chartreuse's lines share one clock. It also counts the
API requests (watches included). Target: stop + start <= floor + 0.5 s.

One run, as the issue asks; BENCH_RUNS=N repeats it and reports the median. It prints
PASS/MISS and exits 0 either way: a report, not a test.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import yaml  # noqa: E402

import alembic_projects as ap  # noqa: E402
import k8s_objects  # noqa: E402
from k8s_sim import K8sSim  # noqa: E402
from pgserver import PgServer  # noqa: E402

BIN = os.environ.get("CHARTREUSE_BIN", str(REPO / "bin" / "chartreuse"))
GROUPS, PER_GROUP, STOP_DELAY = 3, 20, 1.0
FLOOR = GROUPS * STOP_DELAY
TARGET = FLOOR + 0.5
RELEASE = "bench"


def release(sim):
    for g in range(GROUPS):
        for i in range(PER_GROUP):
            name = f"app-g{g}-{i:02d}"
            sim.put(k8s_objects.deployment(name, 1, RELEASE))
            sim.put(k8s_objects.eds(name, 1, RELEASE, priority=10 * (GROUPS - g)))
            if i % 3 == 0:
                sim.put(k8s_objects.hpa(name))
    sim.wait_for(lambda: len(sim.objects("pods")) == GROUPS * PER_GROUP, timeout=30,
                 what="the release's pods")


def run_timed(args, env):
    """Runs chartreuse; its stderr lines with the time each arrived (time.monotonic(), the
    clock of the simulator's request log: it runs in this process)."""
    p = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines = [(time.monotonic(), line.decode(errors="replace")) for line in p.stderr]
    p.wait(timeout=600)
    return p.returncode, lines


def when(lines, text):
    return next(t for t, line in lines if text in line)


def phases(log, lines):
    """(stop seconds, start seconds, requests). Stop: from the first API request to the
    moment chartreuse says Alembic starts. Start: from the first request after Alembic
    (the third ExpectedDeploymentScale list: stop and start list under both labels) to
    the moment chartreuse says the Deployments are started."""
    recs = sorted(log, key=lambda r: r.time)
    eds_lists = [r for r in recs if r.method == "GET" and not r.watch
                 and r.path.endswith("/expecteddeploymentscales")]
    stop = when(lines, "running alembic upgrade") - recs[0].time
    start = when(lines, "Deployments of release") - eds_lists[2].time
    return stop, start, len(recs)


def one_run(pg, tmp):
    db = "bench_" + os.urandom(4).hex()
    pg.create_database(db)
    sim = K8sSim(pod_stop_delay=STOP_DELAY, pod_start_delay=0.05).start()
    try:
        release(sim)
        project = ap.linear(tmp / f"project-{db}", 1)
        cfg = tmp / f"config-{db}.yaml"
        cfg.write_text(yaml.safe_dump({
            "release": RELEASE, "namespace": "default", "stopPods": True,
            "databases": [{"name": "main", "alembicDirectory": str(project.path)}]}))
        env = dict(os.environ, CHARTREUSE_DB_0_URL=pg.url(db),
                   KUBECONFIG=str(sim.kubeconfig(tmp / f"kubeconfig-{db}")))
        sim.request_log.clear()
        t0 = time.monotonic()
        rc, lines = run_timed([BIN, "migrate", "--config", str(cfg)], env)
        wall = time.monotonic() - t0
        if rc != 0:
            sys.exit("bench-pods: migrate failed:\n" + "".join(line for _, line in lines))
        restored = all(d["spec"]["replicas"] == 1 for d in sim.objects("deployments"))
        if not restored:
            sys.exit("bench-pods: the Deployments were not all started again")
        return (*phases(sim.request_log, lines), wall)
    finally:
        sim.stop()
        pg.drop_database(db)


def main():
    if not Path(BIN).exists():
        sys.exit(f"bench-pods: {BIN} not found; build it with: make")
    runs = int(os.environ.get("BENCH_RUNS", "1"))
    pg = PgServer()
    try:
        with tempfile.TemporaryDirectory(prefix="chartreuse-bench-pods.") as tmp:
            results = [one_run(pg, Path(tmp)) for _ in range(runs)]
    finally:
        pg.stop()
    stop = statistics.median(r[0] for r in results)
    start = statistics.median(r[1] for r in results)
    requests = statistics.median(r[2] for r in results)
    wall = statistics.median(r[3] for r in results)
    total = stop + start
    print(f"release: {GROUPS * PER_GROUP} Deployments in {GROUPS} priority groups, "
          f"{GROUPS * PER_GROUP // 3} HPAs, Pods terminate in {STOP_DELAY:.0f} s "
          f"({runs} run{'s' if runs > 1 else ''}, median)")
    print(f"  stop           {stop:6.2f} s")
    print(f"  start          {start:6.2f} s")
    print(f"  stop + start   {total:6.2f} s   floor {FLOOR:.2f} s   "
          f"overhead {total - FLOOR:+.2f} s   ({total / FLOOR:.2f}x the floor)")
    print(f"  API requests   {requests:6.0f}     ({requests / (GROUPS * PER_GROUP):.1f} per "
          f"Deployment, watches included)")
    print(f"  migrate, whole {wall:6.2f} s   (Alembic included)")
    print(f"target: stop + start <= floor + 0.5 s = {TARGET:.2f} s: "
          f"{'PASS' if total <= TARGET else 'MISS'}")


if __name__ == "__main__":
    main()
