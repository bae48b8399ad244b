"""The fault matrix: every step of a migration against every kind of fault.

Steps: wait (the init container's `wait postgres`), lock, decide, stop group 1, stop group 2,
Alembic, verify, start, restore. Faults: an API 500, a 429 with Retry-After, an API request
that times out, a dropped connection, an answer cut midway (the request carried out, then
the connection closed inside the answer: in its headers for a write, in its body for a
read, and for a watch in turn in its headers, inside a chunk and inside an event), a 422
as a validating admission policy refuses a write (which a JSON patch's failed test also
answers), a PostgreSQL restart, SIGTERM, SIGKILL (of chartreuse and everything it started,
as a container kill does).

The database is at lin0001 and the scripts go up to lin0004: one run applies three
revisions in one transaction (Alembic's default), so "in between" (lin0002, lin0003, or
tables without their version) is a state the database could really be left in; the
alembic cells strike in lin0003's upgrade, after lin0002's.

After each run the invariants must hold:
- no Deployment at 0 replicas without chartreuse's mark, no HPA paused without its record;
- the database at the old heads or the new heads, never in between, its tables matching
  its version;
- a second run converges: `migrate` again (the next deployment), then `restore` (the
  restore Job, or the command chartreuse printed): the database at the new heads, every
  Deployment at its expected scale, no marks, the HPAs' behaviour as it was;
- a run that completed (exit 0) left every Deployment at its expected scale, no marks, the
  HPA as it was.
And a run that did not complete must say why on stderr (a SIGKILL aside).

API faults are transient (once; the run must complete, but for an admission refusal,
which a run cannot get past: it must fail, saying so, with the invariants kept). A step's API cell is one run per
API call the step makes, in turn (the calls and the steps they belong to are learnt from
clean reference runs through the simulator's request log); each faulted run proves from
its request log that the faulted request was that call, made by the faulted run inside
that step, answered with the injected fault. The other faults are fired when the step is
observed to be under way. Cells where a fault cannot meet the step are "n/a". Each cell is
a test of its own (`test_fault_matrix[stop_group_1-API_500]`); the table of the cells run is printed
(pytest -s shows it) and written to build/fault-matrix.md; docs/reliability.md quotes it.

test_a_stop_write_applied_after_its_timeout: a timed-out write the server applies late
(after the run ended) must not break the invariants: every write carries the
resourceVersion it was decided from, so a stale copy is refused."""
import os
import re
import signal
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pytest
import yaml

import alembic_projects as ap
import k8s_objects
from conftest import BIN, REPO, migration_lock_key
from k8s_sim import K8sSim
from rbac_helpers import forbidden, job_kubeconfig

RELEASE = "matrix"
SCALES = {"api": 2, "worker": 1}
PRIORITY = {"api": 10, "worker": 5}
GROUPS = sorted(SCALES, key=lambda n: -PRIORITY[n])  # stop order: one Deployment a group
BEHAVIOR = {"scaleDown": {"stabilizationWindowSeconds": 60}}
STOPPED = "chartreuse.wiremind.io/stopped"
RECORDED = "chartreuse.wiremind.io/hpa-behavior-before"

# Stored lin0001; one run applies lin0002, lin0003 (which can be made to pause: the alembic
# cells strike there, after lin0002's upgrade ran in the same transaction) and lin0004.
REVISIONS = ["lin0001", "lin0002", "lin0003", "lin0004"]
OLD, NEW, MIDDLE = REVISIONS[0], REVISIONS[-1], "lin0003"
OLD_STATE = ([OLD], ["t_" + OLD])
NEW_STATE = ([NEW], ["t_" + r for r in REVISIONS])

STEPS = ["wait", "lock", "decide", "stop group 1", "stop group 2", "alembic", "verify",
         "start", "restore"]
FAULTS = ["API 500", "API 429", "API timeout", "dropped connection", "stream cut",
          "admission 422", "PostgreSQL restart", "SIGTERM", "SIGKILL"]
API_FAULTS = {"API 500": dict(status=500, times=1),
              "API 429": dict(status=429, retry_after=1, times=1),
              # no answer: the server holds the request 2.5 s (the client gives up after
              # 1 s), then closes the connection without having applied it
              "API timeout": dict(delay=2.5, drop=True, times=1),
              "dropped connection": dict(drop=True, times=1),
              "stream cut": dict(times=1),  # cut=, by the kind of call: CUTS
              "admission 422": dict(status=422, times=1, message=(
                  "ValidatingAdmissionPolicy 'matrix-policy' with binding 'matrix-binding' "
                  "denied request: refused by the fault matrix"))}
# Where "stream cut" cuts each kind of call: a write once applied, in its answer's headers
# (the client cannot know it landed); a read in its body; a watch in each place in turn.
CUTS = {"write": ["header"], "read": ["body"], "watch": ["header", "chunk", "event"]}
# Faults that only writes can meet.
WRITES_ONLY = {"admission 422"}
# Calls whose failure must not fail a run, and what the run then says.
BEST_EFFORT = {"/events": "goes on without Events",
               "/selfsubjectaccessreviews": "not checked beforehand"}
# A Pod watch has no 1 s limit (it may rightly wait for events): it gives up when its slice
# of the wait is over (5 s in src/pods.c), so a watch is held for longer.
WATCH_DELAY = 6.0
# How the simulator's request log marks a request that the fault answered, and the status
# it logs (0: no answer).
FAULT_MARK = {"API 500": "status 500", "API 429": "status 429", "API timeout": "drop",
              "dropped connection": "drop", "admission 422": "status 422"}  # cut: "cut <where>"
FAULT_STATUS = {"API 500": 500, "API 429": 429, "API timeout": 0, "dropped connection": 0,
                "stream cut": 0, "admission 422": 422}
# test_a_stop_write_applied_after_its_timeout: the request is held this long, then applied.
LATE = 8.0
# API runs touch only their own simulator and database: they run this many at a time
# (never alongside the cells that restart PostgreSQL or send signals).
API_WORKERS = 4
API_STEPS = ["stop group 1", "stop group 2", "start", "restore"]
# Cells where nothing is lost by the fault, so the run itself must complete (exit 0).
MUST_COMPLETE = {(step, f) for step in API_STEPS for f in API_FAULTS
                 if f not in WRITES_ONLY} | {
    ("wait", "PostgreSQL restart"), ("stop group 1", "PostgreSQL restart"),
    ("stop group 2", "PostgreSQL restart"), ("verify", "PostgreSQL restart"),
    ("start", "PostgreSQL restart"), ("restore", "PostgreSQL restart"),
    ("restore", "SIGTERM"),
}
# Cells where the run fails or is interrupted, but knows the database is at the old heads
# or the new ones: it must leave the Deployments running at their expected scales.
# (Before the stop, a killed run has not touched them either.)
MUST_LEAVE_RUNNING = {
    ("lock", "PostgreSQL restart"), ("lock", "SIGTERM"), ("lock", "SIGKILL"),
    ("decide", "PostgreSQL restart"), ("decide", "SIGTERM"), ("decide", "SIGKILL"),
    ("stop group 1", "SIGTERM"), ("stop group 2", "SIGTERM"),
    ("alembic", "PostgreSQL restart"), ("alembic", "SIGTERM"), ("verify", "SIGTERM"),
}
# (step, fault) -> why a fault cannot meet a step; API faults on the steps that make no
# API call are n/a as well.
NOT_APPLICABLE = {}

ALEMBIC_WRAPPER = """#!/bin/sh
# alembic; around an upgrade it notes the wall-clock time it started and ended (the API
# requests before it belong to the stop, those after it to the start), and for the verify
# cells it pauses after a successful upgrade: the test fires its fault while chartreuse
# has not yet read the result.
case " $* " in *" upgrade "*) echo "start $(date +%s.%N)" >> "$MATRIX_MARKS";; esac
/usr/bin/alembic "$@"
rc=$?
case " $* " in *" upgrade "*)
  echo "end $(date +%s.%N)" >> "$MATRIX_MARKS"
  if [ $rc -eq 0 ] && [ -n "$MATRIX_PAUSE" ]; then
    : > "$MATRIX_PAUSE.reached"
    while [ -e "$MATRIX_PAUSE" ]; do sleep 0.05; done
  fi;;
esac
exit $rc
"""

# lin0003's upgrade: a pause whose length the cell chooses (0 unless it aims at Alembic),
# named so that pg_stat_activity shows which revision is running.
PAUSE_IN_MIDDLE = ('op.execute("SELECT pg_sleep(%s) AS in_lin0003" % '
                   '__import__("os").environ.get("MATRIX_SLEEP", "0"))\n    ')

deployment = partial(k8s_objects.deployment, release=RELEASE)


class Cell:
    """One run: a fresh release in a fresh simulator, a fresh database at lin0001 with
    scripts up to lin0004, and chartreuse. `pod_stop_delay`: how long a Pod takes to go
    once chartreuse watches for it (the signal and restart cells aim inside the wait for
    it); a Pod goes only while watched, so every run makes the reference run's calls."""

    def __init__(self, pg, tmp, name, pod_stop_delay=0.5, alembic_sleep=0.0):
        self.pg = pg
        self.tmp = tmp / name
        self.tmp.mkdir(parents=True)
        self.db = "matrix_" + uuid.uuid4().hex[:8]
        pg.create_database(self.db)
        pg.psql(self.db, "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
        pg.psql(self.db, f"INSERT INTO alembic_version VALUES ('{OLD}')")
        pg.psql(self.db, f"CREATE TABLE t_{OLD} (id integer PRIMARY KEY)")
        specs = [(OLD, None, {})]
        for down, rev in zip(REVISIONS, REVISIONS[1:]):
            pause = PAUSE_IN_MIDDLE if rev == MIDDLE else ""
            specs.append((rev, down, {"upgrade": pause + ap.create_table(rev)}))
        self.project = ap._project(self.tmp / "project", specs, [NEW])
        self.sim = K8sSim(pod_stop_delay=pod_stop_delay, pod_start_delay=0.05,
                          pods_stop_once_watched=True).start()
        for name, scale in SCALES.items():
            self.sim.put(deployment(name, scale))
            self.sim.put(k8s_objects.eds(name, scale, RELEASE, priority=PRIORITY[name]))
        self.sim.put(k8s_objects.hpa("api", BEHAVIOR))
        self.sim.wait_for(lambda: len(self.sim.objects("pods")) == sum(SCALES.values()),
                          timeout=10, what="the release's pods")
        self.config = self.tmp / "config.yaml"
        self.config.write_text(yaml.safe_dump({
            "release": RELEASE, "namespace": "default", "stopPods": True,
            "databases": [{"name": "main", "alembicDirectory": str(self.project.path)}]}))
        wrapper = self.tmp / "alembic"
        wrapper.write_text(ALEMBIC_WRAPPER)
        wrapper.chmod(0o755)
        self.pause = self.tmp / "pause"
        self.marks = self.tmp / "alembic-marks"
        self.env = dict(os.environ, CHARTREUSE_DB_0_URL=pg.url(self.db),
                        KUBECONFIG=str(job_kubeconfig(self.sim, self.tmp / "kubeconfig",
                                                      self.config)),
                        CHARTREUSE_ALEMBIC=str(wrapper), CHARTREUSE_KUBE_REQUEST_TIMEOUT="1",
                        MATRIX_MARKS=str(self.marks), MATRIX_SLEEP=str(alembic_sleep))
        self.runs = []  # (what, exit status, stderr)
        self.seen_midway = None  # the stored revisions while Alembic ran lin0003

    def close(self):
        self.sim.stop()
        wait_until(lambda: pg_answers(self.pg), timeout=30)
        try:
            self.pg.drop_database(self.db)
        except Exception:  # a session the cell killed may still be ending
            time.sleep(1)
            self.pg.drop_database(self.db)

    # --- running chartreuse ---------------------------------------------------------------

    def start(self, *args, env=None):
        return subprocess.Popen([BIN, *args], env=env or self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

    def finish(self, what, p, timeout=90):
        out, err = p.communicate(timeout=timeout)
        self.runs.append((what, p.returncode, err.decode(errors="replace")))
        return p.returncode

    def migrate(self):
        return self.start("migrate", "--config", str(self.config))

    def restore(self):
        return self.start("restore", "--release", RELEASE, "--namespace", "default")

    # --- observing ------------------------------------------------------------------------

    def replicas(self, name):
        return self.sim.get("deployments", name)["spec"]["replicas"]

    def sessions(self, like):
        return self.pg.psql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE "
                            "datname = %s AND query LIKE %s", (self.db, like))[0][0]

    def chartreuse_session(self, waiting_on_lock_in=None):
        sql = ("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
               "AND application_name = 'chartreuse'")
        params = (self.db,)
        if waiting_on_lock_in:
            sql += " AND wait_event_type = 'Lock' AND query LIKE %s"
            params += (waiting_on_lock_in,)
        return self.pg.psql("postgres", sql, params)[0][0]

    def stored(self):
        rows = self.pg.psql(self.db, "SELECT version_num FROM alembic_version")
        return sorted(r[0] for r in rows)

    def tables(self):
        rows = self.pg.psql(self.db, "SELECT tablename FROM pg_tables WHERE "
                            "schemaname = 'public' AND tablename LIKE 't_%%'")
        return sorted(r[0] for r in rows)

    def alembic_span(self):
        """Wall-clock (start, end) of the last `alembic upgrade`, None when none ran."""
        if not self.marks.exists():
            return None
        marks = [l.split() for l in self.marks.read_text().splitlines() if l.strip()]
        starts = [float(t) for what, t in marks if what == "start"]
        ends = [float(t) for what, t in marks if what == "end"]
        return (starts[-1], ends[-1] if ends else float("inf")) if starts else None


def wait_until(predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except Exception:  # the database may be restarting
            pass
        time.sleep(0.02)
    return False


def descendants(pid):
    """pid's children, grandchildren...: /proc's parent links."""
    parents = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
                parents[int(d.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
            except (OSError, ValueError):
                pass
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        found += kids
        todo += kids
    return found


def fire(cell, p, fault, down_for=0.5):
    if fault == "PostgreSQL restart":
        cell.pg.restart(down_for=down_for)
    elif fault == "SIGTERM":
        p.send_signal(signal.SIGTERM)
    elif fault == "SIGKILL":
        for pid in [p.pid] + descendants(p.pid):  # the container and all it runs
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def pg_answers(pg):
    try:
        pg.connect().close()
        return True
    except Exception:
        return False


def when_then_fire(cell, p, fault, condition, what, down_for=0.5):
    assert wait_until(condition), f"the run never reached {what}"
    fire(cell, p, fault, down_for)


# --- API calls: which kind, which step ------------------------------------------------------

def kind_of(call):
    """"LIST pods", "WATCH pods", "PATCH deployments/scale", "PATCH horizontalpodautoscalers"..."""
    method, path, watch = call[:3]
    rest = (path.split("/namespaces/", 1)[1].split("/")[1:]  # plural[, name[, sub]]
            if "/namespaces/" in path else path.rsplit("/", 1)[1:])  # cluster-scoped
    if method == "GET":
        method = "WATCH" if watch else ("GET" if len(rest) > 1 else "LIST")
    return method + " " + rest[0] + ("/" + rest[2] if len(rest) > 2 else "")


def call_of(rec):
    return (rec.method, rec.path, rec.watch)


def by_arrival(records):
    return sorted(records, key=lambda r: r.time)


def step_of(cell, records, rec, step_hint):
    """The step of a migrate run (its records, by arrival) that made the request. A stop
    group begins with the scale PATCH of its Deployment (the marks on every Deployment and
    the HPAs' pause, written before any group is scaled, count in group 1); everything after
    the Alembic upgrade is the start. The records of a restore run are all restore's."""
    if step_hint == "restore":
        return "restore"
    span = cell.alembic_span()
    if span and rec.wall >= span[1]:
        return "start"
    step = "stop group 1"
    for n, name in enumerate(GROUPS[1:], start=2):
        scale = f"/deployments/{name}/scale"
        first = next((r for r in records if r.method == "PATCH" and r.path.endswith(scale)
                      and (not span or r.wall < span[0])), None)
        if first is not None and rec.time >= first.time:
            step = f"stop group {n}"
    return step


def label(call):
    """"PATCH deployments/api/scale #1", "GET pods (watch) #2": the call and which one of
    the run's identical calls it is."""
    method, path, watch, nth = call
    what = path.split('/namespaces/', 1)[1].split('/', 1)[1] if '/namespaces/' in path \
        else path.rsplit('/', 1)[1]  # cluster-scoped: a SelfSubjectAccessReview
    return f"{method} {what}{' (watch)' if watch else ''} #{nth + 1}"


def learn_calls(pg, tmp):
    """{step: {label: (method, path, watch, how many identical calls came before it in the
    run)}}: every API call of each step of a clean run, and of a restore after a run killed
    once the pods were stopped."""
    found = {s: {} for s in API_STEPS}
    for step_hint in ("migrate", "restore"):
        cell = Cell(pg, tmp, f"reference-{step_hint}", pod_stop_delay=0.2)
        try:
            first = run_prelude(cell) if step_hint == "restore" else 0
            rc = cell.finish(f"clean {step_hint}",
                             cell.restore() if step_hint == "restore" else cell.migrate())
            assert rc == 0, cell.runs[-1][2]
            records = by_arrival(list(cell.sim.request_log)[first:])
            seen = {}
            for rec in records:
                step = step_of(cell, records, rec, step_hint)
                call = (*call_of(rec), seen.get(call_of(rec), 0))
                seen[call_of(rec)] = call[3] + 1
                found[step][label(call)] = call
        finally:
            cell.close()
    kinds = {step: {kind_of(c) for c in found[step].values()} for step in API_STEPS}
    for step in API_STEPS:  # the calls the matrix always aimed at are still there
        assert "PATCH deployments/scale" in kinds[step], (step, found[step])
    for kind in ("LIST pods", "WATCH pods"):
        assert kind in kinds["stop group 1"] and kind in kinds["stop group 2"], found
    return found


def call_class(call):
    method, _, watch = call[:3]
    return "watch" if watch else ("read" if method == "GET" else "write")


def fault_variants(fault, call):
    """The runs a fault makes of one call: [(name suffix, the fault's parameters)]."""
    f = dict(API_FAULTS[fault])
    if fault in WRITES_ONLY and call_class(call) != "write":
        return []
    if fault == "stream cut":
        return [(f" cut {where}", dict(f, cut=where)) for where in CUTS[call_class(call)]]
    if "delay" in f and call[2]:
        f["delay"] = WATCH_DELAY
    return [("", f)]


def arm(sim, call, **fault):
    method, path, watch, nth = call
    return sim.fault(method, "^" + re.escape(path) + "$",
                     query="watch=" if watch else r"^(?!.*watch=)", after=nth, **fault)


def faulted_record(cell, call, mark, first, timeout):
    """The one request the fault answered (logged as `mark`), once it is over: a held
    request is logged when the server answers or drops it, which may be after the run."""
    def found():
        hits = [r for r in list(cell.sim.request_log)[first:]
                if call_of(r) == call[:3] and r.fault == mark]
        return hits if hits and all(r.duration > 0 for r in hits) else None
    wait_until(found, timeout=timeout)
    return found() or []


def prove_hit(cell, step, call, armed, first, began, mark, status=None, held=None):
    """From the request log: the fault answered exactly the aimed call, made by the faulted
    process (started at `began`), inside the step, with the injected status; a held request
    outlived the client's patience (the client asked again while it was pending)."""
    nth = call[3]
    hits = faulted_record(cell, call, mark, first, timeout=(held or 0) + 3)
    if armed.hits != 1 or len(hits) != 1:
        return None, [f"the fault answered {armed.hits} requests; {len(hits)} of the faulted "
                      f"run's were answered that way ({mark})"]
    rec, problems = hits[0], []
    if rec.time < began:
        problems.append("the faulted request came before the faulted run started")
    records = by_arrival(list(cell.sim.request_log)[first:])
    same = [r for r in records if call_of(r) == call_of(rec)]
    if same.index(rec) != nth:
        problems.append(f"the fault hit call #{same.index(rec) + 1}, not #{nth + 1}")
    landed = step_of(cell, records, rec, step)
    if landed != step:
        problems.append(f"the faulted request was made during {landed}, not {step}")
    if status is not None and rec.status != status:
        problems.append(f"the faulted request was answered {rec.status}, not {status}")
    if held:
        again = [r for r in same if rec.time < r.time < rec.time + rec.duration]
        if rec.duration < held - 0.1 or not again:
            problems.append(f"no sign the client timed out (held {rec.duration:.1f} s, "
                            f"{len(again)} retries meanwhile)")
    return rec, problems


# --- the steps: bring the run to the step, then fire ------------------------------------

def run_prelude(cell):
    """A migrate killed once the pods are stopped (both groups scaled down, their Pods going);
    returns where the request log stood after it."""
    p = cell.migrate()
    when_then_fire(cell, p, "SIGKILL", lambda: cell.replicas(GROUPS[-1]) == 0, "the stop")
    cell.finish("migrate killed after the stop", p)
    return len(cell.sim.request_log)


def run_api(cell, step, fault, call, f):
    """The run of an API cell for one kind of call, with the fault's parameters f; returns
    (exit status, problems)."""
    first = run_prelude(cell) if step == "restore" else 0
    armed = arm(cell.sim, call, **f)
    began = time.monotonic()
    p = cell.restore() if step == "restore" else cell.migrate()
    rc = cell.finish("faulted " + ("restore" if step == "restore" else "migrate"), p)
    mark = f"cut {f['cut']}" if f.get("cut") else FAULT_MARK[fault]
    # An Event, or a question to the API server (SelfSubjectAccessReview): best effort.
    said = next((words for end, words in BEST_EFFORT.items() if call[1].endswith(end)), None)
    _, problems = prove_hit(cell, step, call, armed, first, began, mark,
                            FAULT_STATUS[fault], None if said else f.get("delay"))
    if said:  # the run goes on whatever became of it, and says so
        err = cell.runs[-1][2]
        if rc != 0:
            problems.append(f"a failed best-effort call failed the run (exit {rc})")
        # A refusal is final; other faults may be retried away.
        if fault in WRITES_ONLY and said not in err:
            problems.append("the lost call is not reported: " + err[-300:])
        return rc, problems
    if fault in WRITES_ONLY and rc == 0:
        problems.append("the refused write was taken for a success: the run completed")
    if fault in WRITES_ONLY and "matrix-policy" not in cell.runs[-1][2]:
        problems.append("the refusal is not reported: " + cell.runs[-1][2][-300:])
    return rc, problems


def run_step(cell, step, fault):
    """Runs the cell's scenario with a PostgreSQL restart or a signal; returns the exit
    status of the faulted run."""
    if step == "restore":
        return restore_step(cell, fault)
    if step == "wait":
        return wait_step(cell, fault)
    holder = None
    if step == "lock":  # another migration holds the lock
        holder = cell.pg.connect(cell.db)
        holder.cursor().execute("SELECT pg_advisory_lock(%s)", (migration_lock_key(),))
    if step == "decide":
        # Something holds the version table (a hand-run Alembic, a backup): chartreuse takes
        # the lock, starts deciding, and its read of the stored revisions waits.
        holder = cell.pg.connect(cell.db)
        holder.autocommit = False
        holder.cursor().execute("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE")
    if step == "verify":
        cell.pause.touch()
        cell.env["MATRIX_PAUSE"] = str(cell.pause)
    p = cell.migrate()
    try:
        fire_at(cell, p, step, fault)
        if step == "decide" and fault != "PostgreSQL restart":
            time.sleep(0.3)  # the signal arrives while the read waits; then it gets its answer
    finally:
        if holder is not None:
            try:
                holder.close()
            except Exception:
                pass
        if step == "verify":
            cell.pause.unlink(missing_ok=True)
    return cell.finish("faulted migrate", p)


def fire_at(cell, p, step, fault):
    if step == "lock":
        when_then_fire(cell, p, fault, lambda: cell.chartreuse_session() > 0, "the lock wait")
        time.sleep(0.3)
    elif step == "decide":
        when_then_fire(cell, p, fault,
                       lambda: cell.chartreuse_session("SELECT version_num FROM%") > 0,
                       "the read of the stored revisions")
    elif step == "stop group 1":
        when_then_fire(cell, p, fault, lambda: cell.replicas(GROUPS[0]) == 0, "group 1's stop")
    elif step == "stop group 2":
        when_then_fire(cell, p, fault, lambda: cell.replicas(GROUPS[1]) == 0, "group 2's stop")
    elif step == "alembic":
        # In lin0003's upgrade, after lin0002's, in one transaction. A restart is down for 2 s:
        # Alembic fails at once, and chartreuse finds the server still gone.
        assert wait_until(lambda: cell.sessions(f"%in_{MIDDLE}%") > 0), \
            f"the run never reached Alembic in {MIDDLE}"
        cell.seen_midway = cell.stored()  # from outside: nothing committed yet
        fire(cell, p, fault, down_for=2.0)
    elif step == "verify":
        reached = Path(str(cell.pause) + ".reached")
        when_then_fire(cell, p, fault, reached.exists, "the end of Alembic")
    elif step == "start":
        when_then_fire(cell, p, fault,
                       lambda: cell.stored() == [NEW] and cell.replicas(GROUPS[0]) > 0,
                       "the start")


def wait_step(cell, fault):
    """The init container: `wait postgres` while PostgreSQL restarts under it."""
    cell.pg.halt()
    p = cell.start("wait", "postgres", "--url-env", "CHARTREUSE_DB_0_URL", "--timeout", "30")
    time.sleep(1.0)
    if fault in ("SIGTERM", "SIGKILL"):
        fire(cell, p, fault)
    time.sleep(1.0)
    cell.pg.resume()
    return cell.finish("faulted wait", p)


def restore_step(cell, fault):
    """A run killed after the stop, then `restore` under the fault."""
    run_prelude(cell)
    if fault in ("SIGTERM", "SIGKILL"):
        cell.sim.fault("PATCH", rf"/deployments/{GROUPS[0]}/scale$", delay=1.0, times=1)
    p = cell.restore()
    if fault == "PostgreSQL restart":
        fire(cell, p, fault)
    elif fault in ("SIGTERM", "SIGKILL"):
        time.sleep(0.5)  # inside the delayed call
        fire(cell, p, fault)
    return cell.finish("faulted restore", p)


# --- invariants ----------------------------------------------------------------------------

def check_invariants(cell, rc):
    problems = []
    for name in SCALES:
        d = cell.sim.get("deployments", name)
        marks = d["metadata"].get("annotations") or {}
        if d["spec"]["replicas"] == 0 and STOPPED not in marks:
            problems.append(f"{name} at 0 without a mark")
    h = cell.sim.get("horizontalpodautoscalers", "api")
    paused = ((h["spec"].get("behavior") or {}).get("scaleUp") or {}).get("selectPolicy")
    if paused == "Disabled" and RECORDED not in (h["metadata"].get("annotations") or {}):
        problems.append("HPA paused without its record")
    wait_until(lambda: pg_answers(cell.pg), timeout=20)
    stored, tables = cell.stored(), cell.tables()
    if (stored, tables) not in (OLD_STATE, NEW_STATE):
        problems.append(f"database in between: version {stored}, tables {tables}")
    if rc not in (0, -9, 128 + 9):
        err = cell.runs[-1][2]
        if "error:" not in err:
            problems.append(f"exit {rc} without an error line: {err[-300:]}")
    return problems


def check_convergence(cell):
    problems = []
    cell.sim.clear_faults()
    cell.env.pop("MATRIX_PAUSE", None)
    for what, p in (("second migrate", cell.migrate), ("restore", cell.restore)):
        rc = cell.finish(what, p())
        if rc != 0:
            problems.append(f"{what} exited {rc}: {cell.runs[-1][2][-300:]}")
    if (cell.stored(), cell.tables()) != NEW_STATE:
        problems.append(f"not converged: version {cell.stored()}, tables {cell.tables()}")
    return problems + running_problems(cell, "not converged")


def running_problems(cell, what):
    """Every Deployment at its expected scale without a mark, the HPA as it was."""
    problems = []
    for name, scale in SCALES.items():
        d = cell.sim.get("deployments", name)
        marks = d["metadata"].get("annotations") or {}
        if d["spec"]["replicas"] != scale or STOPPED in marks:
            problems.append(f"{what}: {name} at {d['spec']['replicas']}"
                            f"{' marked' if STOPPED in marks else ''}")
    h = cell.sim.get("horizontalpodautoscalers", "api")
    if h["spec"].get("behavior") != BEHAVIOR or RECORDED in (h["metadata"].get("annotations")
                                                            or {}):
        problems.append(f"{what}: HPA behaviour {h['spec'].get('behavior')}")
    return problems


def judge(cell, step, fault, rc):
    problems = check_invariants(cell, rc)
    problems += [f"outside the Job's Role: {r}" for r in forbidden(cell.sim)]
    if rc == 0:  # a completed run left everything running (late answers landed by now)
        problems += running_problems(cell, "completed, but")
    if step == "alembic" and cell.seen_midway != [OLD]:
        problems.append(f"the fault was not mid-way through one transaction: while "
                        f"{MIDDLE} ran, the database said {cell.seen_midway}")
    if (step, fault) in MUST_LEAVE_RUNNING:
        left = {n: cell.replicas(n) for n in SCALES}
        if left != SCALES:
            problems.append(f"Deployments left at {left}: {cell.runs[-1][2][-400:]}")
    problems += check_convergence(cell)
    if (step, fault) in MUST_COMPLETE and rc != 0:
        faulted = [r for r in cell.runs if r[0].startswith("faulted")][-1]
        problems.append(f"{fault} was not survived: exit {rc}: {faulted[2][-400:]}")
    return problems


def outcome(rc):
    if rc == 0:
        return "completed"
    if rc in (-9, 128 + 9):
        return "killed"
    return f"failed ({rc})"


def one_run(pg, tmp, name, step, fault, which=None, call=None, f=None):
    """(exit status, problems) of one faulted run and the invariants after it."""
    api = which is not None
    print(f"cell: {step} × {fault}" + (f" × {which}" if which else ""), flush=True)
    cell = Cell(pg, tmp, name, pod_stop_delay=0.2 if api else 0.5,
                alembic_sleep=1.5 if step == "alembic" else 0.0)
    try:
        if api:
            rc, problems = run_api(cell, step, fault, call, f)
        else:
            rc, problems = run_step(cell, step, fault), []
        problems += judge(cell, step, fault, rc)
    except Exception as e:  # a cell that cannot even run is a failed cell
        problems, rc = [f"{type(e).__name__}: {e}"], None
    finally:
        show_runs(cell)
        cell.close()
    return rc, problems


def show_runs(cell):
    if os.environ.get("FAULT_MATRIX_ONLY"):  # one cell: show what each run said
        print("".join(f"--- {cell.tmp.name}: {what}: exit {code}\n{err}"
                      for what, code, err in cell.runs), end="", flush=True)


def cell_name(step, fault, which=None):
    return f"{STEPS.index(step)}-{FAULTS.index(fault)}" + (
        "-" + re.sub(r"[^A-Za-z0-9]+", "-", which) if which else "")


def in_parallel(jobs, fn):
    with ThreadPoolExecutor(API_WORKERS) as pool:
        return list(pool.map(lambda job: fn(*job), jobs))


def selected():
    """FAULT_MATRIX_ONLY="step:fault[:which]" reruns one cell (or one run of an API cell)."""
    only = os.environ.get("FAULT_MATRIX_ONLY")
    if not only:
        return None
    step, fault, which = (only + "::").split(":")[:3]
    return step, fault, which


@pytest.fixture(scope="module")
def calls(pg, tmp_path_factory):
    return learn_calls(pg, tmp_path_factory.mktemp("reference"))


def applicable(step, fault):
    return (step, fault) not in NOT_APPLICABLE and not (
        fault in API_FAULTS and step not in API_STEPS)


CELLS = [(step, fault) for step in STEPS for fault in FAULTS if applicable(step, fault)]


@pytest.fixture(scope="module")
def matrix():
    """The table the cells fill in, printed and written to build/fault-matrix.md once the
    module's cells have run (one cell alone, with -k, writes a table of one)."""
    table = {(step, fault): "n/a" if not applicable(step, fault) else "skipped"
             for step in STEPS for fault in FAULTS}
    state = {"table": table, "injected": 0, "calls": None, "began": time.monotonic()}
    yield state
    text = render(table, state["injected"], state["calls"],
                  time.monotonic() - state["began"])
    print("\n" + text)
    out = REPO / "build" / "fault-matrix.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


def cell_runs(pg, tmp_path, calls, step, fault):
    """[(which call, exit status, problems)] of every faulted run of one cell."""
    only = selected()
    if fault not in API_FAULTS:  # one at a time: these restart PostgreSQL or time signals
        rc, problems = one_run(pg, tmp_path, cell_name(step, fault), step, fault)
        return [(None, rc, problems)]
    jobs = [(which + suffix, call, f) for which, call in calls[step].items()
            for suffix, f in fault_variants(fault, call)
            if not (only and only[2]) or which + suffix == only[2]]
    outcomes = in_parallel(jobs, lambda which, call, f: one_run(
        pg, tmp_path, cell_name(step, fault, which), step, fault, which, call, f))
    return [(which, rc, problems) for (which, _, _), (rc, problems) in zip(jobs, outcomes)]


@pytest.mark.timing
@pytest.mark.parametrize("step, fault", CELLS, ids=[f"{s}-{f}".replace(" ", "_")
                                                    for s, f in CELLS])
def test_fault_matrix(pg, tmp_path, calls, matrix, step, fault):
    only = selected()
    if only and only[:2] != (step, fault):
        pytest.skip("FAULT_MATRIX_ONLY names another cell")
    runs = cell_runs(pg, tmp_path, calls, step, fault)
    matrix["calls"] = calls
    matrix["injected"] += sum(rc is not None for _, rc, _ in runs)
    failures = [f"{step} × {fault}" + (f" × {which}" if which else "") + ": " +
                "; ".join(problems) for which, _, problems in runs if problems]
    seen = sorted({outcome(rc) for _, rc, _ in runs if rc is not None})
    count = f" ×{len(runs)}" if fault in API_FAULTS else ""
    matrix["table"][step, fault] = "FAIL" if failures else f"ok{count}, " + " or ".join(seen)
    assert runs, "no faulted run"
    assert not failures, "\n".join(failures)


def late_write(pg, tmp, step, which, call):
    """A migrate whose `call` gets no answer (the client gives up after 1 s and asks again)
    but is applied by the server LATE seconds after it arrived, after the run ended."""
    print(f"late write: {step} × {which}", flush=True)
    cell = Cell(pg, tmp, "late-" + cell_name(step, "API timeout", which), pod_stop_delay=0.2)
    try:
        armed = arm(cell.sim, call, delay=LATE, times=1)
        began = time.monotonic()
        rc = cell.finish("faulted migrate", cell.migrate())
        ended = time.monotonic()
        rec, problems = prove_hit(cell, step, call, armed, 0, began, "delay", held=LATE)
        if rec is None or problems:
            return [], [f"{step} × {which}: " + "; ".join(problems)]
        if rec.time + rec.duration < ended:
            return [], [f"{step} × {which}: inconclusive: the late write landed before the "
                        f"run ended"]
        problems = judge(cell, step, "late write", rc)
        if rc != 0:
            problems.append(f"the run did not complete: exit {rc}: {cell.runs[0][2][-300:]}")
        return ([f"{step} × {which} (applied {rec.time + rec.duration - ended:.1f} s after the"
                 f" run, which exited {rc}): " + "; ".join(problems)] if problems else []), []
    finally:
        show_runs(cell)
        cell.close()


@pytest.mark.timing
def test_a_stop_write_applied_after_its_timeout(pg, tmp_path, calls):
    """Every write of the stop (its Deployment and HPA PATCHes, its scale PATCHes) in turn,
    held by the server for LATE seconds, then applied: the client timed out and wrote again,
    the run went on and completed; the old write lands afterwards. The invariants must
    still hold, and a run that completed must leave everything running."""
    if selected():
        pytest.skip("FAULT_MATRIX_ONLY: one cell of the matrix only")
    jobs = [(pg, tmp_path, step, which, call) for step in ("stop group 1", "stop group 2")
            for which, call in calls[step].items() if call[0] == "PATCH"]
    found, broken = [], []
    for violations, errors in in_parallel(jobs, late_write):
        found += violations
        broken += errors
    if broken:  # the scenario itself went wrong: not the known failure
        pytest.fail("\n".join(broken))
    print("\n".join(["late writes that broke an invariant:"] + found))
    assert not found, "\n".join(found)


def render(table, injected, calls, seconds):
    cells = [v for v in table.values() if v not in ("n/a", "skipped")]
    held = sum(v.startswith("ok") for v in cells)
    lines = [f"Faulted runs: {injected}, in {len(cells)} cells; cells holding every "
             f"invariant: {held} of {len(cells)} (n/a: "
             f"{sum(v == 'n/a' for v in table.values())}); {seconds:.0f} s.", "",
             "| step | " + " | ".join(FAULTS) + " |",
             "|---|" + "---|" * len(FAULTS)]
    for step in STEPS:
        lines.append(f"| {step} | " + " | ".join(table[step, f] for f in FAULTS) + " |")
    if calls:
        lines += ["", "Each API cell is one run per API call of the step, in turn (#n: the "
                  "nth identical call of the run):", ""]
        for step in API_STEPS:
            lines.append(f"- {step} ({len(calls[step])}): " +
                         "; ".join(f"`{which}`" for which in calls[step]))
    return "\n".join(lines) + "\n"
