"""The fault matrix: every step of a migration against every kind of fault.

Steps: wait (the init container's `wait postgres`), lock, decide, stop group 1, stop group 2,
Alembic, verify, start, restore. Faults: an API 500, a 429 with Retry-After, an API request
that times out, a dropped connection, a PostgreSQL restart, SIGTERM, SIGKILL (of chartreuse
and everything it started, as a container kill does).

After each cell the invariants must hold:
- no Deployment at 0 replicas without chartreuse's mark, no HPA paused without its record;
- the database at the old heads or the new heads, never in between (the migration is
  transactional), its tables matching its version;
- a second run converges: `migrate` again (the next deployment), then `restore` (the
  restore Job, or the command chartreuse printed): the database at the new heads, every
  Deployment at its expected scale, no marks, the HPAs' behaviour as it was.
And a run that did not complete must say why on stderr (a SIGKILL aside).

API faults are aimed at the first request of the step (a transient fault: the run must
complete); the other faults are fired when the step is observed to be under way. Cells
where a fault cannot meet the step are "n/a". The table is printed (pytest -s shows it)
and written to build/fault-matrix.md; docs/reliability.md quotes it."""
import os
import signal
import subprocess
import time
import uuid
from functools import partial
from pathlib import Path

import pytest
import yaml

import alembic_projects as ap
import k8s_objects
from conftest import BIN, REPO, migration_lock_key
from k8s_sim import K8sSim

RELEASE = "matrix"
SCALES = {"api": 2, "worker": 1}
PRIORITY = {"api": 10, "worker": 5}
BEHAVIOR = {"scaleDown": {"stabilizationWindowSeconds": 60}}
STOPPED = "chartreuse.wiremind.io/stopped"
RECORDED = "chartreuse.wiremind.io/hpa-behavior-before"

STEPS = ["wait", "lock", "decide", "stop group 1", "stop group 2", "alembic", "verify",
         "start", "restore"]
FAULTS = ["API 500", "API 429", "API timeout", "dropped connection", "PostgreSQL restart",
          "SIGTERM", "SIGKILL"]
API_FAULTS = {"API 500": dict(status=500, times=1),
              "API 429": dict(status=429, retry_after=1, times=1),
              "API timeout": dict(delay=2.5, times=1),  # the client gives up after 1 s
              "dropped connection": dict(drop=True, times=1)}
# The first API request of the steps that make any: (deployment, scale calls before it).
API_TARGET = {"stop group 1": ("api", 0), "stop group 2": ("worker", 0),
              "start": ("api", 1), "restore": ("api", 0)}
# Cells where nothing is lost by the fault, so the run itself must complete (exit 0).
MUST_COMPLETE = {(step, f) for step in API_TARGET for f in API_FAULTS} | {
    ("wait", "PostgreSQL restart"), ("stop group 1", "PostgreSQL restart"),
    ("stop group 2", "PostgreSQL restart"), ("verify", "PostgreSQL restart"),
    ("start", "PostgreSQL restart"), ("restore", "PostgreSQL restart"),
    ("restore", "SIGTERM"),
}
# Cells where the run fails or is interrupted, but knows the database is at the old heads
# or the new ones: it must leave the Deployments running at their expected scales.
MUST_LEAVE_RUNNING = {
    ("lock", "SIGTERM"), ("stop group 1", "SIGTERM"), ("stop group 2", "SIGTERM"),
    ("alembic", "PostgreSQL restart"), ("alembic", "SIGTERM"), ("verify", "SIGTERM"),
}
NOT_APPLICABLE = {
    ("decide", "SIGTERM"): "lasts milliseconds: the lock and stop cells frame it",
    ("decide", "SIGKILL"): "lasts milliseconds: the lock and stop cells frame it",
}

ALEMBIC_WRAPPER = """#!/bin/sh
# alembic, and for the verify cells a pause after a successful upgrade: the test fires its
# fault while chartreuse has not yet read the result.
/usr/bin/alembic "$@"
rc=$?
case " $* " in *" upgrade "*)
  if [ $rc -eq 0 ] && [ -n "$MATRIX_PAUSE" ]; then
    : > "$MATRIX_PAUSE.reached"
    while [ -e "$MATRIX_PAUSE" ]; do sleep 0.05; done
  fi;;
esac
exit $rc
"""


deployment = partial(k8s_objects.deployment, release=RELEASE)


class Cell:
    """One run: a fresh release in a fresh simulator, a fresh database at lin0001 with
    scripts up to lin0002 (whose upgrade takes 1.5 s), and chartreuse."""

    def __init__(self, pg, tmp, step, fault):
        self.pg, self.step, self.fault = pg, step, fault
        self.tmp = tmp / f"{STEPS.index(step)}-{FAULTS.index(fault)}"
        self.tmp.mkdir(parents=True)
        self.db = "matrix_" + uuid.uuid4().hex[:8]
        pg.create_database(self.db)
        pg.psql(self.db, "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
        pg.psql(self.db, "INSERT INTO alembic_version VALUES ('lin0001')")
        pg.psql(self.db, "CREATE TABLE t_lin0001 (id integer PRIMARY KEY)")
        specs = [("lin0001", None, {}),
                 ("lin0002", "lin0001", {"upgrade": 'op.execute("SELECT pg_sleep(1.5)")\n'
                                                    '    ' + ap.create_table("lin0002")})]
        self.project = ap._project(self.tmp / "project", specs, ["lin0002"])
        self.sim = K8sSim(pod_stop_delay=0.5, pod_start_delay=0.05).start()
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
        self.env = dict(os.environ, CHARTREUSE_DB_0_URL=pg.url(self.db),
                        KUBECONFIG=str(self.sim.kubeconfig(self.tmp / "kubeconfig")),
                        CHARTREUSE_ALEMBIC=str(wrapper), CHARTREUSE_KUBE_REQUEST_TIMEOUT="1")
        self.runs = []  # (what, exit status, stderr)

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

    def chartreuse_session(self):
        return self.pg.psql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE "
                            "datname = %s AND application_name = 'chartreuse'",
                            (self.db,))[0][0]

    def stored(self):
        rows = self.pg.psql(self.db, "SELECT version_num FROM alembic_version")
        return sorted(r[0] for r in rows)

    def tables(self):
        rows = self.pg.psql(self.db, "SELECT tablename FROM pg_tables WHERE "
                            "schemaname = 'public' AND tablename LIKE 't_%%'")
        return sorted(r[0] for r in rows)


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


# --- the steps: bring the run to the step, then fire ------------------------------------

def when_then_fire(cell, p, fault, condition, what, down_for=0.5):
    assert wait_until(condition), f"the run never reached {what}"
    fire(cell, p, fault, down_for)


def run_step(cell, step, fault):
    """Runs the cell's scenario with the fault; returns the exit status of the faulted run."""
    if fault in API_FAULTS:
        name, before = API_TARGET[step]
        cell.sim.fault("PATCH", rf"/deployments/{name}/scale$", after=before,
                       **API_FAULTS[fault])
    if step == "restore":
        return restore_step(cell, fault)
    if step == "wait":
        return wait_step(cell, fault)
    holder = None
    if step == "lock":
        holder = cell.pg.connect(cell.db)
        holder.cursor().execute("SELECT pg_advisory_lock(%s)", (migration_lock_key(),))
    if step == "verify":
        cell.pause.touch()
        cell.env["MATRIX_PAUSE"] = str(cell.pause)
    down = step == "decide" and fault == "PostgreSQL restart"
    if down:  # down when the run starts
        cell.pg.halt()
    p = cell.migrate()
    try:
        if down:
            time.sleep(2.0)
            cell.pg.resume()
        elif fault not in API_FAULTS:
            fire_at(cell, p, step, fault)
    finally:
        if holder is not None:
            try:
                holder.close()
            except Exception:
                pass
        if step == "verify":
            cell.pause.unlink(missing_ok=True)
    return cell.finish("faulted migrate", p)


def pg_answers(pg):
    try:
        pg.connect().close()
        return True
    except Exception:
        return False


def fire_at(cell, p, step, fault):
    if step == "lock":
        when_then_fire(cell, p, fault, lambda: cell.chartreuse_session() > 0, "the lock wait")
        time.sleep(0.3)
    elif step == "stop group 1":
        when_then_fire(cell, p, fault, lambda: cell.replicas("api") == 0, "group 1's stop")
    elif step == "stop group 2":
        when_then_fire(cell, p, fault, lambda: cell.replicas("worker") == 0, "group 2's stop")
    elif step == "alembic":
        # Down for 2 s: Alembic fails at once, and chartreuse finds the server still gone.
        when_then_fire(cell, p, fault, lambda: cell.sessions("%pg_sleep%") > 0, "Alembic",
                       down_for=2.0)
    elif step == "verify":
        reached = Path(str(cell.pause) + ".reached")
        when_then_fire(cell, p, fault, reached.exists, "the end of Alembic")
    elif step == "start":
        when_then_fire(cell, p, fault,
                       lambda: cell.stored() == ["lin0002"] and cell.replicas("api") > 0,
                       "the start")
    elif step == "decide":
        pass  # PostgreSQL was already down when the run began


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
    p = cell.migrate()
    when_then_fire(cell, p, "SIGKILL", lambda: cell.replicas("worker") == 0, "the stop")
    cell.finish("migrate killed after the stop", p)
    if fault in ("SIGTERM", "SIGKILL"):
        cell.sim.fault("PATCH", r"/deployments/api/scale$", delay=1.0, times=1)
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
    if (stored, tables) not in ((["lin0001"], ["t_lin0001"]),
                                (["lin0002"], ["t_lin0001", "t_lin0002"])):
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
    if cell.stored() != ["lin0002"]:
        problems.append(f"not converged: version {cell.stored()}")
    for name, scale in SCALES.items():
        d = cell.sim.get("deployments", name)
        if d["spec"]["replicas"] != scale or STOPPED in (d["metadata"].get("annotations")
                                                          or {}):
            problems.append(f"not converged: {name} at {d['spec']['replicas']}")
    if cell.sim.get("horizontalpodautoscalers", "api")["spec"].get("behavior") != BEHAVIOR:
        problems.append("not converged: HPA behaviour")
    return problems


def outcome(rc):
    if rc == 0:
        return "completed"
    if rc in (-9, 128 + 9):
        return "killed"
    return f"failed ({rc})"


@pytest.mark.slow
def test_fault_matrix(pg, tmp_path):
    table, failures, injected = {}, [], 0
    only = os.environ.get("FAULT_MATRIX_ONLY")  # "step:fault", to rerun one cell
    for step in STEPS:
        for fault in FAULTS:
            if only and only != f"{step}:{fault}":
                table[step, fault] = "skipped"
                continue
            if (step, fault) in NOT_APPLICABLE or (
                    fault in API_FAULTS and step not in API_TARGET):
                table[step, fault] = "n/a"
                continue
            print(f"cell: {step} × {fault}", flush=True)
            cell = Cell(pg, tmp_path, step, fault)
            try:
                rc = run_step(cell, step, fault)
                injected += 1
                problems = check_invariants(cell, rc)
                if (step, fault) in MUST_LEAVE_RUNNING:
                    left = {n: cell.replicas(n) for n in SCALES}
                    if left != SCALES:
                        problems.append(f"Deployments left at {left}: {cell.runs[0][2][-400:]}")
                problems += check_convergence(cell)
                if (step, fault) in MUST_COMPLETE and rc != 0:
                    problems.append(f"{fault} was not survived: exit {rc}: "
                                    f"{cell.runs[0][2][-400:]}")
            except Exception as e:  # a cell that cannot even run is a failed cell
                problems, rc = [f"{type(e).__name__}: {e}"], None
            finally:
                cell.close()
            table[step, fault] = ("ok, " + outcome(rc)) if not problems else "FAIL"
            if problems:
                failures.append(f"{step} × {fault}: " + "; ".join(problems))
    text = render(table, injected)
    print("\n" + text)
    out = REPO / "build" / "fault-matrix.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    assert not failures, "\n".join(failures) + "\n\n" + text


def render(table, injected):
    held = sum(v.startswith("ok") for v in table.values())
    lines = [f"Faults injected: {injected}; cells holding every invariant: {held} of "
             f"{injected} (n/a: {len(table) - injected}).", "",
             "| step | " + " | ".join(FAULTS) + " |",
             "|---|" + "---|" * len(FAULTS)]
    for step in STEPS:
        lines.append(f"| {step} | " + " | ".join(table[step, f] for f in FAULTS) + " |")
    return "\n".join(lines) + "\n"
