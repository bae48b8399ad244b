"""A simulated kubelet for Job Pods: runs a Pod's init containers, then its containers, as
local processes, and reports what happened in the Pod's status.

    from k8s_sim.jobrunner import Image, JobRunner
    runner = JobRunner(sim, images={
        "ghcr.io/wiremind/chartreuse:0.1.0": Image(files={"/opt/chartreuse/bin/chartreuse": BIN},
                                             path=["/opt/chartreuse/bin"], workdir="/tmp"),
        "registry.example.com/app:1.0": Image(files={"/app/alembic": REPO / "examples/alembic"}),
    }, workdir=tmp_path / "pods")
    sim.kubelet_hook = runner            # sim.stop() calls runner.close()
    ... create a Pod (or a Job controller does) ...
    runner.wait("my-pod")                # "Succeeded" / "Failed"
    runner.logs("my-pod", "migrate")     # what the container printed (stdout + stderr)
    runner.describe("my-pod")            # every container's state and the tail of its log

Which Pods: the simulator's `Kubelet` calls `sim.kubelet_hook(sim, pod)` when a Pending Pod's
start delay is over. The runner takes the Pods whose `restartPolicy` is `Never` or
`OnFailure` (what a Job's Pod has) and returns False for the others, which the normal
simulated kubelet starts (Running and Ready, no process). Each taken Pod gets a thread of
its own; the controller thread is never blocked.

The life of a Pod, as a kubelet does it:
- phase stays `Pending` while the init containers run, one at a time in order (Kubernetes
  reports `Pending`, `Init:N/M` there, not Running); a failing init container ends the
  Pod (`Failed`) with `restartPolicy: Never`, the later ones and the containers never start.
- then every container starts at once (concurrently, as in Kubernetes): phase `Running`,
  Ready; when all have exited, `Succeeded` if every exit code is 0, else `Failed`.
- `restartPolicy: OnFailure`: a container (init or not) that exits non-zero is started
  again after a back-off (`restart_backoff`, doubling, at most 10 s), `restartCount` and
  `lastState` tell; the Pod ends only when everything succeeded (or it is deleted).
- each container status goes waiting (`PodInitializing` / `ContainerCreating`), running
  (`startedAt`), terminated (`exitCode`, reason `Completed` or `Error`, `startedAt`,
  `finishedAt`, `containerID`); a command that cannot be executed is `StartError` with exit
  code 128, a process ended by a signal reports 128 + the signal number (137, 143).
- Pod conditions `PodScheduled`, `PodReadyToStartContainers`, `Initialized`,
  `ContainersReady`, `Ready`; `podIP` (10.245.x.y), `hostIP`, `startTime`, `qosClass`.
- a Secret, ConfigMap or key that is missing (and not `optional`) leaves the container
  waiting with `CreateContainerConfigError` (a missing volume source: `ContainerCreating`,
  a failed mount), retried every 0.5 s; an image with no mapping is `ErrImagePull`. A real
  kubelet would retry forever; the runner gives up after `pending_timeout` seconds: the Pod
  becomes Failed with a message and `runner.errors` records why.
- status is written with the controllers' `mutate` (under the store lock, a new
  resourceVersion, a MODIFIED event), so watches and a Job controller see every step.

Processes. `argv = command + args` after Kubernetes' `$(VAR)` expansion (`$$` escapes,
undefined references stay as written), executed directly, never through a shell; an empty
`command` takes the image's `entrypoint`, empty `args` its `cmd`. Each process is a new
session (its own process group) with stdin from /dev/null, stdout and stderr both to the
container's log file. Only the container's own environment is passed, not the test's
(plus, for sanitizer builds, `ASAN_OPTIONS`, `UBSAN_OPTIONS`, `LSAN_OPTIONS` from the test
process: `host_env`). When the main process exits, what is left of its process group is
killed, as the end of a container's PID namespace would.

Environment, in this order (later wins): the image's `env` (`PATH` unless it sets one: the
image's `path` dirs, then `host_path`, default /usr/bin:/bin, so that host tools such as
`alembic`, `python3`, `cp`, `sh` are found; `HOME` /root unless set); `HOSTNAME` (the Pod's name);
`KUBERNETES_SERVICE_HOST` / `KUBERNETES_SERVICE_PORT` (+ `_HTTPS`, `KUBERNETES_PORT...`)
pointing at the simulator; with the service account mounted, `CHARTREUSE_SERVICEACCOUNT_DIR`
(chartreuse reads its in-cluster credentials there: see "Paths" for why); `envFrom`
(`secretRef` / `configMapRef`, `prefix`, `optional`; keys that are not valid variable names
are skipped); `env` (`value` with `$(VAR)` expansion over what is defined so far,
`valueFrom` `secretKeyRef` / `configMapKeyRef` with `optional`, `fieldRef` on
metadata.name / namespace / uid / labels['k'] / annotations['k'], spec.nodeName /
serviceAccountName, status.podIP / hostIP; `resourceFieldRef` is not supported). As in the
kubelet, `$(VAR)` in env values, command and args sees the Kubernetes-provided variables, not
the image's `env`. Secret data is base64-decoded; bytes that are not UTF-8 pass through
unchanged (surrogateescape).

Service account. Unless `automountServiceAccountToken: false` (on the Pod or on its
ServiceAccount, if that exists), the runner mints a token (`sim.add_token`, user
`system:serviceaccount:<ns>:<serviceAccountName or default>`, revoked when the Pod's
processes are all gone) and writes `token`, `ca.crt` (the simulator's CA) and `namespace` into
a volume mounted at /var/run/secrets/kubernetes.io/serviceaccount. In-cluster clients need
the simulator's TLS (the default): they always speak https. The ServiceAccount object need not
exist and RBAC is not enforced (the simulator stores it only).

Volumes: `emptyDir` (a fresh directory per Pod, shared by its containers), `configMap` and
`secret` (every key or the `items`, `defaultMode` / item `mode`, `optional`; binaryData too),
`projected` (`serviceAccountToken`, `configMap`, `secret`, `downwardAPI` fieldRef items),
`downwardAPI`, `hostPath` (the host path itself). Others make the container wait in
`ContainerCreating`. Files are written once, when the Pod starts: later changes to a
ConfigMap are not propagated. `readOnly` is not enforced (everything runs as the test's
user). `subPath` and `subPathExpr` are supported.

Paths: translation, not a chroot. Each container gets a root directory
`<workdir>/<ns>_<pod>_<uid8>/containers/<name>/root` in which every *mapped path* is
materialized as a symlink: the image's `files` (container path -> host file or directory),
then the volumeMounts (shortest first; a mount hides what the image had there, a path
mapped inside an already mapped directory turns that directory into a real one holding a
symlink per entry), then the service-account directory. The rule, applied to every argv
element, every environment value (each `:`-separated element of `PATH`) and the working
directory: an absolute path that is a mapped path, lies under one, or is a directory on the
way to one (after `posixpath.normpath`, "/" itself excluded) becomes `<root>` + the path as
written (so `/opt/chartreuse/.` keeps its `/.`). Anything else is left alone: `/usr/bin/python3`,
`/bin/sh`, `/tmp/x` are the host's. The working directory is always inside `<root>` (created
there when missing), so relative paths stay in the container's view.

Its limits: only strings that *start* with a mapped path are translated, and only in argv,
env and workingDir: `--config=/etc/x` is not, nor is a path a program builds, finds in a
file or has compiled in. chartreuse's default `alembicDirectory` (/app/alembic) is such a
path (hence `translate_config_files`, below), and so are the fixed in-cluster paths of
client-go (kubectl), which the processes would look for on the host (chartreuse honours
`CHARTREUSE_SERVICEACCOUNT_DIR`, set by the runner). Symlinks are followed as usual, so
`realpath` and `..` out of a mapped directory land on the host; processes see the host's
file system, users, network and PIDs; nothing is isolated. A directory on the way to a
mapped path holds only what is mapped (`/usr/local/bin` of an image that maps
`/usr/local/bin/chartreuse` lists only that): map image content under directories the
host does not use.

`translate_config_files=True` also applies the rule inside the text files written from
ConfigMap volumes, to every absolute path that stands as a token of its own (after
whitespace, a quote, `:`, `=`, `[`, `,` or at a line start); so a chartreuse `config.yaml` that
says `alembicDirectory: /app/alembic` points at the image's Alembic project. Off by default:
it changes the data the container reads.

Deletion, deadlines, shutdown. When the Pod gets a `deletionTimestamp`, its processes get
SIGTERM, then SIGKILL after the grace period (`deletionGracePeriodSeconds`, else
`terminationGracePeriodSeconds`, else 30; at least 2 s, as a kubelet's minimum), and their
terminated states are written while the Pod still exists. The Pod object itself is removed
by the simulated kubelet after `sim.pod_stop_delay`, as for any Pod, which may be before a
process that ignores SIGTERM is gone (`runner.running()` tells). `spec.activeDeadlineSeconds`
fails the Pod (`DeadlineExceeded`) and kills it. Each container run also has
`container_timeout` seconds (default 300) after which it is killed (SIGTERM, then SIGKILL after
2 s) and `runner.errors` says so: a hung process cannot hang the test suite.
`runner.close()` (called by `sim.stop()`) SIGKILLs every process group still running and
waits for the threads.

The API's `pods/{pod}/log` serves what the runner captured (`container_log`), so `kubectl
logs` and Helm 4's `helm.sh/hook-output-log-policy` read it.

Not simulated: probes, lifecycle hooks, sidecar (restartable) init containers, resource
limits, `exec` on the API, image pulls (`imagePullPolicy`,
pull secrets are ignored), user/group IDs, `securityContext`, `terminationMessagePath` (with
`terminationMessagePolicy: FallbackToLogsOnError` the tail of the log of a failed container
becomes its `terminated.message`).
"""
import base64
import copy
import ctypes
import itertools
import os
import posixpath
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from .api import now_rfc3339

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
DEFAULT_HOST_PATH = "/usr/bin:/bin"
HOST_ENV = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")
MIN_GRACE = 2.0          # the kubelet's minimumGracePeriodInSeconds
POLL = 0.02              # how often a Pod's thread looks at its processes and its Pod
CONFIG_RETRY = 0.5
MAX_BACKOFF = 10.0
LOG_TAIL_LINES = 80
LOG_TAIL_BYTES = 2048
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
PR_SET_PDEATHSIG = 1     # <sys/prctl.h>
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_runner():
    """In the child before exec: SIGKILL when the thread that started it ends. A Pod's
    thread reaps its processes before it ends, so this only fires when the test process
    dies without cleaning up (SIGKILL, a timeout): no container outlives the tests."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Image:
    """What a container image stands for on this host.

    files: container path -> host path (a file or a directory), e.g.
           {"/app/alembic": "examples/alembic", "/opt/chartreuse/bin/chartreuse": BIN}
    path: container directories put first on PATH (e.g. ["/opt/chartreuse/bin"])
    env: the image's ENV
    workdir: the image's WORKDIR (the container's working directory unless workingDir)
    entrypoint / cmd: used when the container gives no command / no args
    """
    files: dict = field(default_factory=dict)
    path: list = field(default_factory=list)
    env: dict = field(default_factory=dict)
    workdir: str = "/"
    entrypoint: list = field(default_factory=list)
    cmd: list = field(default_factory=list)

    @classmethod
    def of(cls, spec):
        if spec is None or isinstance(spec, Image):
            return spec
        if isinstance(spec, dict):
            return cls(files=dict(spec))
        raise TypeError(f"an image is an Image or a dict of container path -> host path, "
                        f"not {spec!r}")


def expand(s, lookup):
    """Kubernetes' $(VAR) expansion (k8s.io/kubernetes third_party/forked/golang/expansion):
    `$(NAME)` -> lookup(NAME) when defined, else left as written; `$$` -> `$`; any other `$`
    stays."""
    out, i, n = [], 0, len(s)
    while i < n:
        ch = s[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = s[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            close = s.find(")", i + 2)
            if close < 0:
                out.append("$(")
                i += 2
                continue
            name = s[i + 2:close]
            v = lookup(name)
            out.append(v if v is not None else f"$({name})")
            i = close + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)


class ConfigError(Exception):
    """A container cannot be created yet: reason as a kubelet reports it."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason, self.message = reason, message


class _Stop(Exception):
    """The Pod's run ends early (deleted, gone, runner closing)."""


def _decode(b):
    return b.decode("utf-8", "surrogateescape")


def _exit_code(rc):
    return 128 - rc if rc < 0 else rc


def _tail(path, lines=LOG_TAIL_LINES, nbytes=None):
    try:
        data = Path(path).read_bytes()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    text = "\n".join(text.splitlines()[-lines:])
    if nbytes is not None and len(text) > nbytes:
        text = text[-nbytes:]
    return text


def _splice(d):
    """A symlink to a directory becomes a real directory holding a symlink per entry."""
    target = Path(os.readlink(d))
    d.unlink()
    d.mkdir()
    if target.is_dir():
        for entry in sorted(os.listdir(target)):
            (d / entry).symlink_to(target / entry)


def materialize(root, cpath, target):
    """Make `root`/`cpath` a symlink to `target`, never writing outside `root`."""
    parts = [p for p in cpath.split("/") if p and p != "."]
    if not parts or ".." in parts:
        raise ConfigError("CreateContainerError", f"cannot map the path {cpath!r}")
    cur = Path(root)
    for part in parts[:-1]:
        cur = cur / part
        if cur.is_symlink():
            _splice(cur)
        elif not cur.exists():
            cur.mkdir()
        elif not cur.is_dir():
            raise ConfigError("CreateContainerError",
                              f"cannot map {cpath}: {cur} is not a directory")
    leaf = cur / parts[-1]
    if leaf.is_symlink() or leaf.is_file():
        leaf.unlink()
    elif leaf.is_dir():
        shutil.rmtree(leaf)  # a directory of ours (on the way to a mapped path): hidden
    leaf.symlink_to(target)


class Container:
    """One container of a run: its spec, where it lives and what happened to it."""

    def __init__(self, spec, init, index, root):
        self.spec, self.init, self.index = spec, init, index
        self.name = spec.get("name", f"c{index}")
        self.image_name = spec.get("image", "")
        self.root = Path(root) / "containers" / self.name / "root"
        self.image = None       # the Image, once planned
        self.mapped = []        # normalized container paths materialized in root
        self.image_paths = []
        self.built = False
        self.proc = None
        self.attempt = 0
        self.restarts = 0
        self.state = {"waiting": {"reason": "PodInitializing"}}
        self.last_state = {}
        self.started_at = None
        self.deadline = None
        self.next_start = 0.0
        self.waiting_since = None
        self.exit_code = None
        self.done = False       # finished for good (success, or failure without restart)
        self.kill_reason = None
        self.log_files = []

    @property
    def log_path(self):
        return self.log_files[-1] if self.log_files else None

    def translate(self, s):
        """The path-translation rule (see the module docstring)."""
        if not isinstance(s, str) or not s.startswith("/"):
            return s
        n = posixpath.normpath(s)
        if n in ("/", "//"):
            return s
        for p in self.mapped:
            if n == p or n.startswith(p + "/") or p.startswith(n + "/"):
                return str(self.root) + s
        return s


class PodRun(threading.Thread):
    """Runs one Pod in its thread. For tests: `phase`, `inits` / `mains` (Containers:
    `state`, `exit_code`, `proc`, `root`, `log_files`), `volumes` (name -> host path),
    `dir` (the Pod's directory), `done` (an Event set when the run is over)."""

    def __init__(self, runner, pod):
        m = pod["metadata"]
        super().__init__(name=f"jobrunner-{m['name']}", daemon=True)
        self.runner, self.sim = runner, runner.sim
        self.pod = pod
        self.ns, self.pod_name, self.uid = m.get("namespace") or "default", m["name"], m["uid"]
        self.spec = pod.get("spec") or {}
        self.restart_policy = self.spec.get("restartPolicy", "Always")
        self.dir = runner.workdir / f"{self.ns}_{self.pod_name}_{self.uid[:8]}"
        self.inits = [Container(c, True, i, self.dir)
                      for i, c in enumerate(self.spec.get("initContainers") or [])]
        self.mains = [Container(c, False, i, self.dir)
                      for i, c in enumerate(self.spec.get("containers") or [])]
        for c in self.mains:
            c.state = {"waiting": {"reason": "PodInitializing" if self.inits
                                   else "ContainerCreating"}}
        self.phase = "Pending"
        self.reason = self.message = None
        self.initialized = not self.inits
        self.start_time = (pod.get("status") or {}).get("startTime") or now_rfc3339()
        self.started_mono = time.monotonic()
        self.pod_ip = runner._next_ip()
        self.token = None
        self.volumes = {}       # volume name -> host directory (or file for hostPath)
        self.terminating = False
        self._automount_cached = None
        self.done = threading.Event()
        self._lock = threading.Lock()

    # --- status -------------------------------------------------------------------------

    def _cstatus(self, c):
        st = {"name": c.name, "image": c.image_name,
              "imageID": f"sim-image://{c.image_name}" if c.attempt else "",
              "ready": "running" in c.state if not c.init else
              c.done and c.exit_code == 0,
              "restartCount": c.restarts, "state": copy.deepcopy(c.state),
              "lastState": copy.deepcopy(c.last_state)}
        if c.attempt:
            st["containerID"] = self._container_id(c)
        if not c.init:
            st["started"] = "running" in c.state
        return st

    def _container_id(self, c):
        return f"sim://{self.uid.replace('-', '')[:12]}-{c.name}-{c.attempt}"

    def _status(self, old):
        now = now_rfc3339()
        old_conds = {c.get("type"): c for c in (old or {}).get("conditions") or []}

        def cond(typ, ok, reason=None, message=None):
            st = "True" if ok else "False"
            prev = old_conds.get(typ)
            c = {"type": typ, "status": st, "lastProbeTime": None,
                 "lastTransitionTime": prev.get("lastTransitionTime", now)
                 if prev and prev.get("status") == st else now}
            if reason:
                c["reason"] = reason
            if message:
                c["message"] = message
            return c
        terminal = self.phase in ("Succeeded", "Failed")
        pending_inits = [c.name for c in self.inits if not (c.done and c.exit_code == 0)]
        not_ready = [c.name for c in self.mains if "running" not in c.state]
        ready = not not_ready and not terminal
        ready_reason = "PodCompleted" if terminal else None if ready else "ContainersNotReady"
        ready_msg = None if ready or terminal else \
            f"containers with unready status: [{' '.join(not_ready)}]"
        conditions = [
            cond("PodReadyToStartContainers", not terminal),
            cond("Initialized", self.initialized,
                 None if self.initialized else "ContainersNotInitialized",
                 None if self.initialized else
                 f"containers with incomplete status: [{' '.join(pending_inits)}]"),
            cond("Ready", ready, ready_reason, ready_msg),
            cond("ContainersReady", ready, ready_reason, ready_msg),
            cond("PodScheduled", True)]
        status = {"phase": self.phase, "conditions": conditions,
                  "hostIP": "10.0.0.1", "hostIPs": [{"ip": "10.0.0.1"}],
                  "podIP": self.pod_ip, "podIPs": [{"ip": self.pod_ip}],
                  "startTime": self.start_time, "qosClass": "BestEffort",
                  "containerStatuses": [self._cstatus(c) for c in self.mains]}
        if self.inits:
            status["initContainerStatuses"] = [self._cstatus(c) for c in self.inits]
        if self.reason:
            status["reason"] = self.reason
        if self.message:
            status["message"] = self.message
        return status

    def write(self):
        """Write the Pod's status as the controllers do (a MODIFIED event for watches)."""
        rt = self.sim.controllers.rt_pod

        def change(o):
            o["status"] = self._status(o.get("status"))
        with self._lock:
            return self.sim.controllers.mutate(rt, self.ns, self.pod_name, change, self.uid)

    # --- the run ------------------------------------------------------------------------

    def run(self):
        try:
            self._run()
        except _Stop:
            pass
        except Exception as e:
            self.runner.errors.append(f"{self.ns}/{self.pod_name}: {e!r}")
            traceback.print_exc()
            try:
                self.phase, self.reason = "Failed", "SimJobRunnerError"
                self.message = f"k8s_sim JobRunner internal error: {e!r}"
                self.write()
            except Exception:
                pass
        finally:
            for c in self.inits + self.mains:
                self._kill(c, signal.SIGKILL)
            if self.token:
                self.sim.revoke_token(self.token)
            self.done.set()

    def _run(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "logs").mkdir(exist_ok=True)
        self.write()
        self._prepare_pod()
        for c in self.inits:
            if not self._run_to_completion([c]):
                self._finish()
                return
        self.initialized = True
        for c in self.mains:
            c.state = {"waiting": {"reason": "ContainerCreating"}}
        self.write()
        self._run_to_completion(self.mains)
        self._finish()

    def _finish(self):
        if self.phase not in ("Succeeded", "Failed"):
            ok = all(c.done and c.exit_code == 0 for c in self.inits + self.mains)
            self.phase = "Succeeded" if ok else "Failed"
        self.write()

    # --- waiting for things -------------------------------------------------------------

    def _check(self):
        """Raise _Stop when the run must end at once (runner closing, Pod gone); return
        ("deleted" | "deadline", grace seconds) when the Pod must be terminated."""
        if self.runner._closing.is_set() or self.sim._stopped.is_set():
            raise _Stop()
        pod = self.sim.store.get("", "pods", self.ns, self.pod_name)
        if pod is None or pod["metadata"].get("uid") != self.uid:
            raise _Stop()
        if self.terminating:
            return None
        if pod["metadata"].get("deletionTimestamp"):
            self.terminating = True
            m, spec = pod["metadata"], pod.get("spec") or {}
            grace = m.get("deletionGracePeriodSeconds")
            if grace is None:
                grace = spec.get("terminationGracePeriodSeconds", 30)
            return ("deleted", max(float(grace), MIN_GRACE))
        deadline = self.spec.get("activeDeadlineSeconds")
        if deadline is not None and time.monotonic() - self.started_mono > float(deadline):
            self.terminating = True
            self.phase, self.reason = "Failed", "DeadlineExceeded"
            self.message = "Pod was active on the node longer than the specified deadline"
            grace = self.spec.get("terminationGracePeriodSeconds", 30)
            return ("deadline", max(float(grace), MIN_GRACE))
        return None

    def _give_up(self, containers, e):
        """A ConfigError lasted pending_timeout: fail the Pod (a kubelet would wait)."""
        self.message = (f"{e.message} (the k8s_sim JobRunner gave up after "
                        f"{self.runner.pending_timeout:g} s; a kubelet would keep retrying)")
        self.runner.errors.append(f"{self.ns}/{self.pod_name}: {self.message}")
        self.phase, self.reason = "Failed", e.reason
        self._terminate_all(containers, "gave-up", MIN_GRACE)
        raise _Stop()

    def _prepare_pod(self):
        """The Pod's volumes, retried while a source is missing (ContainerCreating)."""
        since = time.monotonic()
        first = self.inits[:1] or self.mains
        while True:
            try:
                self._prepare_volumes()
                return
            except ConfigError as e:
                new = {"waiting": {"reason": "ContainerCreating", "message": e.message}}
                if any(c.state != new for c in first):
                    for c in first:
                        c.state = new
                    self.write()
                if time.monotonic() - since >= self.runner.pending_timeout:
                    self._give_up([], e)
            end = time.monotonic() + CONFIG_RETRY
            while time.monotonic() < end:
                ev = self._check()
                if ev:
                    self._terminate_all([], *ev)
                    if ev[0] == "deleted":
                        raise _Stop()
                    self._finish()
                    raise _Stop()
                time.sleep(POLL * 5)

    def _run_to_completion(self, containers):
        """Start the containers (all at once), restart them per restartPolicy, wait until
        every one is done. True when every one exited 0."""
        now = time.monotonic()
        for c in containers:
            c.next_start, c.waiting_since = now, None
        backoff = {c.name: self.runner.restart_backoff for c in containers}
        while not all(c.done for c in containers):
            ev = self._check()
            if ev:
                self._terminate_all(containers, *ev)
                if ev[0] == "deleted":
                    raise _Stop()
                return False
            changed = False
            now = time.monotonic()
            for c in containers:
                if c.done:
                    continue
                if c.proc is None:
                    if now >= c.next_start:
                        changed |= self._try_start(c, containers)
                    continue
                rc = c.proc.poll()
                if rc is None and now > c.deadline:
                    self.runner.errors.append(
                        f"{self.ns}/{self.pod_name}: container {c.name} killed after its "
                        f"{self.runner.container_timeout:g} s deadline")
                    c.kill_reason = (f"killed by the k8s_sim JobRunner after its "
                                     f"{self.runner.container_timeout:g} s deadline")
                    self._stop_process(c, MIN_GRACE)
                    rc = c.proc.poll()
                if rc is None:
                    continue
                term = self._exited(c, rc)
                changed = True
                if c.exit_code != 0 and self.restart_policy == "OnFailure" and \
                        not c.kill_reason:
                    c.last_state = {"terminated": term}
                    c.next_start = time.monotonic() + backoff[c.name]
                    backoff[c.name] = min(backoff[c.name] * 2, MAX_BACKOFF)
                    c.restarts += 1
                    c.state = {"waiting": {"reason": "CrashLoopBackOff",
                                           "message": f"back-off {backoff[c.name] / 2:g}s "
                                                      f"restarting failed container="
                                                      f"{c.name} pod={self.pod_name}"}}
                else:
                    c.done = True
            if self.phase == "Pending" and not containers[0].init and \
                    any(c.proc is not None for c in containers):
                self.phase = "Running"
                changed = True
            if changed:
                self.write()
            else:
                time.sleep(POLL)
        return all(c.exit_code == 0 for c in containers)

    # --- processes ----------------------------------------------------------------------

    def _try_start(self, c, containers):
        """Start the container's next process; True when its state changed."""
        now = time.monotonic()
        try:
            argv, exe, env, cwd = self._prepare(c)
        except ConfigError as e:
            if c.waiting_since is None:
                c.waiting_since = now
            new = {"waiting": {"reason": e.reason, "message": e.message}}
            changed, c.state = new != c.state, new
            if now - c.waiting_since >= self.runner.pending_timeout:
                self._give_up(containers, e)
            c.next_start = now + CONFIG_RETRY
            return changed
        c.waiting_since = None
        c.kill_reason = None
        c.attempt += 1
        log = self.dir / "logs" / (f"{c.name}.log" if c.attempt == 1
                                   else f"{c.name}.{c.attempt}.log")
        c.log_files.append(log)
        c.started_at = now_rfc3339()
        with open(log, "wb") as out:
            try:
                if exe is None:
                    raise FileNotFoundError(
                        f'exec: "{argv[0]}": executable file not found in $PATH')
                c.proc = subprocess.Popen(argv, executable=exe, env=env, cwd=cwd,
                                          stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True,
                                          close_fds=True, preexec_fn=_die_with_runner)
            except OSError as e:
                c.proc = None
                msg = str(e.args[0]) if exe is None else \
                    f'exec: "{argv[0]}": {e.strerror or e}'
                out.write(f"k8s_sim JobRunner: {msg}\n".encode())
                c.exit_code = 128
                c.state = {"terminated": {"exitCode": 128, "reason": "StartError",
                                          "message": msg, "startedAt": c.started_at,
                                          "finishedAt": now_rfc3339(),
                                          "containerID": self._container_id(c)}}
                c.done = True
                return True
        c.deadline = time.monotonic() + self.runner.container_timeout
        c.state = {"running": {"startedAt": c.started_at}}
        return True

    def _exited(self, c, rc):
        """Record the exit of the container's process; returns its terminated state."""
        code = _exit_code(rc)
        self._kill_group(c, signal.SIGKILL)  # what is left of the container goes with it
        term = {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                "startedAt": c.started_at, "finishedAt": now_rfc3339(),
                "containerID": self._container_id(c)}
        if c.kill_reason:
            term["message"] = c.kill_reason
        elif code != 0 and c.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            msg = _tail(c.log_path, nbytes=LOG_TAIL_BYTES)
            if msg:
                term["message"] = msg
        c.state = {"terminated": term}
        c.exit_code = code
        c.proc = None
        return term

    def _kill_group(self, c, sig):
        p = c.proc
        if p is None:
            return
        try:
            os.killpg(p.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _kill(self, c, sig):
        p = c.proc
        if p is None:
            return
        self._kill_group(c, sig)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def _stop_process(self, c, grace):
        """SIGTERM the container's process group, SIGKILL after `grace` seconds."""
        self._terminate([c], grace)

    def _terminate(self, running, grace):
        running = [c for c in running if c.proc is not None]
        for c in running:
            self._kill_group(c, signal.SIGTERM)
        end = time.monotonic() + grace
        while any(c.proc.poll() is None for c in running) and time.monotonic() < end:
            if self.runner._closing.is_set() or self.sim._stopped.is_set():
                break
            time.sleep(POLL)
        for c in running:
            if c.proc.poll() is None:
                self._kill_group(c, signal.SIGKILL)
                try:
                    c.proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass

    def _terminate_all(self, containers, what, grace):
        """Terminate the running containers (SIGTERM, SIGKILL after grace), record their
        exits, mark everything done and write the status."""
        running = [c for c in containers if c.proc is not None]
        self._terminate(running, grace)
        for c in running:
            if c.proc.poll() is not None:
                self._exited(c, c.proc.returncode)
        for c in containers:
            c.done = True
        if what == "deleted" and self.phase not in ("Succeeded", "Failed"):
            # a kubelet puts a deleted Pod that will not run again in phase Failed
            self.phase = "Failed"
        self.write()

    # --- preparing a container ----------------------------------------------------------

    def _prepare_volumes(self):
        vdir = self.dir / "volumes"
        vdir.mkdir(exist_ok=True)
        for v in self.spec.get("volumes") or []:
            name = v.get("name")
            if name in self.volumes:
                continue
            self.volumes[name] = self._volume(v, vdir / name)
        if self._automount():
            d = vdir / "kube-api-access-sim"
            if "kube-api-access-sim" not in self.volumes:
                d.mkdir(exist_ok=True)
                self._write_files(d, self._sa_files(), 0o644)
                self.volumes["kube-api-access-sim"] = d

    def _automount(self):
        if self._automount_cached is None:
            v = self.spec.get("automountServiceAccountToken")
            if v is None:
                sa = self.sim.store.get("", "serviceaccounts", self.ns, self._sa_name())
                v = (sa or {}).get("automountServiceAccountToken", True) is not False
            self._automount_cached = bool(v)
        return self._automount_cached

    def _sa_name(self):
        return self.spec.get("serviceAccountName") or self.spec.get("serviceAccount") or \
            "default"

    def _token(self):
        if self.token is None:
            self.token = f"sim-sa-{os.urandom(12).hex()}"
            self.sim.add_token(self.token,
                               f"system:serviceaccount:{self.ns}:{self._sa_name()}")
        return self.token

    def _sa_files(self):
        ca = b""
        if self.sim.ca_path:
            ca = Path(self.sim.ca_path).read_bytes()
        return {"token": self._token().encode(), "ca.crt": ca,
                "namespace": self.ns.encode()}

    def _object(self, plural, name, optional, what):
        obj = self.sim.store.get("", plural, self.ns, name)
        if obj is None and not optional:
            kind = "secret" if plural == "secrets" else "configmap"
            raise ConfigError(what, f'{kind} "{name}" not found')
        return obj

    def _data(self, plural, obj):
        """key -> bytes of a Secret or ConfigMap."""
        if obj is None:
            return {}
        out = {}
        if plural == "secrets":
            for k, v in (obj.get("data") or {}).items():
                out[k] = base64.b64decode(v or "")
        else:
            for k, v in (obj.get("data") or {}).items():
                out[k] = (v or "").encode()
            for k, v in (obj.get("binaryData") or {}).items():
                out[k] = base64.b64decode(v or "")
        return out

    def _keyed_files(self, plural, src, optional_default=False, what="ContainerCreating"):
        name = src.get("secretName") if plural == "secrets" and "secretName" in src \
            else src.get("name")
        optional = src.get("optional", optional_default)
        obj = self._object(plural, name, optional, what)
        data = self._data(plural, obj)
        items = src.get("items")
        files = {}
        if items:
            for it in items:
                key = it.get("key")
                if key not in data:
                    if optional:
                        continue
                    raise ConfigError(what, f'couldn\'t find key {key} in '
                                      f'{"Secret" if plural == "secrets" else "ConfigMap"} '
                                      f'{self.ns}/{name}')
                files[it.get("path", key)] = (data[key], it.get("mode"))
        else:
            files = {k: (v, None) for k, v in data.items()}
        return files

    def _write_files(self, d, files, default_mode, translate=False):
        for rel, content in files.items():
            mode = default_mode
            if isinstance(content, tuple):
                content, m = content
                mode = m if m is not None else default_mode
            rel = rel.lstrip("/")
            if ".." in rel.split("/"):
                raise ConfigError("ContainerCreating", f"invalid path {rel!r} in a volume")
            p = d / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if translate:
                content = self._translate_text(content)
            p.write_bytes(content)
            os.chmod(p, mode)

    def _field(self, path):
        m = self.pod["metadata"]
        simple = {"metadata.name": m.get("name"), "metadata.namespace": self.ns,
                  "metadata.uid": self.uid, "spec.nodeName": self.spec.get("nodeName"),
                  "spec.serviceAccountName": self._sa_name(),
                  "status.podIP": self.pod_ip, "status.hostIP": "10.0.0.1",
                  "status.podIPs": self.pod_ip, "status.hostIPs": "10.0.0.1"}
        if path in simple:
            return simple[path] or ""
        mt = re.match(r"^metadata\.(labels|annotations)\['(.*)'\]$", path)
        if mt:
            return (m.get(mt.group(1)) or {}).get(mt.group(2), "")
        if path in ("metadata.labels", "metadata.annotations"):
            d = m.get(path.split(".")[1]) or {}
            return "\n".join(f'{k}="{v}"' for k, v in sorted(d.items()))
        raise ConfigError("CreateContainerConfigError",
                          f"unsupported fieldRef fieldPath {path!r}")

    def _volume(self, v, d):
        if "emptyDir" in v:
            d.mkdir(exist_ok=True)
            return d
        if "hostPath" in v:
            return Path(v["hostPath"].get("path", "/"))
        if "configMap" in v or "secret" in v:
            plural = "configmaps" if "configMap" in v else "secrets"
            src = v.get("configMap") or v.get("secret") or {}
            files = self._keyed_files(plural, src)
            d.mkdir(exist_ok=True)
            self._write_files(d, files, src.get("defaultMode", 0o644),
                              translate=plural == "configmaps" and
                              self.runner.translate_config_files)
            return d
        if "downwardAPI" in v:
            src = v["downwardAPI"] or {}
            files = {it["path"]: (self._field(it["fieldRef"]["fieldPath"]).encode(),
                                  it.get("mode"))
                     for it in src.get("items") or [] if "fieldRef" in it}
            d.mkdir(exist_ok=True)
            self._write_files(d, files, src.get("defaultMode", 0o644))
            return d
        if "projected" in v:
            src = v["projected"] or {}
            files = {}
            for s in src.get("sources") or []:
                if "serviceAccountToken" in s:
                    files[s["serviceAccountToken"].get("path", "token")] = \
                        self._token().encode()
                elif "configMap" in s:
                    files.update(self._keyed_files("configmaps", s["configMap"]))
                elif "secret" in s:
                    files.update(self._keyed_files("secrets", s["secret"]))
                elif "downwardAPI" in s:
                    for it in (s["downwardAPI"] or {}).get("items") or []:
                        if "fieldRef" in it:
                            files[it["path"]] = (
                                self._field(it["fieldRef"]["fieldPath"]).encode(),
                                it.get("mode"))
            d.mkdir(exist_ok=True)
            self._write_files(d, files, src.get("defaultMode", 0o644))
            return d
        kinds = sorted(k for k in v if k != "name")
        raise ConfigError("ContainerCreating",
                          f"volume {v.get('name')!r}: {', '.join(kinds) or 'no source'} is "
                          f"not supported by the k8s_sim JobRunner")

    def _translate_text(self, content):
        """translate_config_files: the rule applied to each path token of a text file.
        The file is shared by the Pod's containers: the first container whose mapped
        paths match translates it."""
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            return content

        def one(path):
            for c in self.inits + self.mains:
                try:
                    self._plan(c)
                except ConfigError:
                    continue
                t = c.translate(path)
                if t != path:
                    return t
            return path
        return re.sub(r"""(^|[\s'"=:\[,])(/[^\s'",\]}]*)""",
                      lambda mt: mt.group(1) + one(mt.group(2)), text,
                      flags=re.M).encode("utf-8")

    def _image(self, c):
        img = self.runner.image(c.image_name)
        if img is None:
            raise ConfigError("ErrImagePull",
                              f'image "{c.image_name}" is not mapped in the k8s_sim '
                              f'JobRunner\'s images')
        return img

    def _plan(self, c):
        """The container's image and mapped paths (computed once, nothing written)."""
        if c.image is not None:
            return
        img = self._image(c)
        mapped = sorted({posixpath.normpath(p) for p in img.files}, key=len)
        mounts = [posixpath.normpath(m.get("mountPath", "/"))
                  for m in c.spec.get("volumeMounts") or []]
        mapped += [m for m in sorted(set(mounts), key=len) if m not in mapped]
        if self._automount() and SA_DIR not in mapped:
            mapped.append(SA_DIR)
        c.image, c.mapped = img, mapped
        c.image_paths = [posixpath.normpath(p) for p in img.files]

    def _build_root(self, c):
        """Materialize the container's root: image files, then mounts, then the
        service-account directory (once per container)."""
        if c.built:
            return
        self._plan(c)
        img, root = c.image, c.root
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        for cpath, host in sorted(img.files.items(), key=lambda kv: len(kv[0])):
            host = Path(host).resolve()
            if not host.exists():
                raise ConfigError("ErrImagePull", f"image {c.image_name}: {cpath} maps to "
                                  f"{host}, which does not exist")
            materialize(root, cpath, host)
        mounts = list(c.spec.get("volumeMounts") or [])
        env_for_subpath = None
        for vm in sorted(mounts, key=lambda m: len(posixpath.normpath(m.get("mountPath",
                                                                            "/")))):
            vname, mpath = vm.get("name"), vm.get("mountPath", "")
            if vname not in self.volumes:
                raise ConfigError("CreateContainerConfigError",
                                  f"volumeMount {vname!r}: no such volume in the Pod")
            target = self.volumes[vname]
            sub = vm.get("subPath")
            if vm.get("subPathExpr"):
                if env_for_subpath is None:
                    env_for_subpath = self._env(c, img)[1]
                sub = expand(vm["subPathExpr"], env_for_subpath.get)
            if sub:
                if ".." in sub.split("/") or sub.startswith("/"):
                    raise ConfigError("CreateContainerConfigError",
                                      f"subPath {sub!r} must be a relative path without ..")
                target = Path(target) / sub
                if not target.exists() and not target.is_symlink():
                    target.mkdir(parents=True)  # as a kubelet creates a missing subPath
            materialize(root, mpath, target)
        if "kube-api-access-sim" in self.volumes and \
                not any(posixpath.normpath(m.get("mountPath", "")) == SA_DIR for m in mounts):
            materialize(root, SA_DIR, self.volumes["kube-api-access-sim"])
        c.built = True

    def _lookup_env(self, plural, ref, what):
        obj = self._object(plural, ref.get("name"), ref.get("optional", False), what)
        data = self._data(plural, obj)
        key = ref.get("key")
        if key not in data:
            if ref.get("optional", False):
                return None
            kind = "secret" if plural == "secrets" else "configmap"
            raise ConfigError(what, f'couldn\'t find key {key} in {kind} '
                              f'{self.ns}/{ref.get("name")}')
        return _decode(data[key])

    def _env(self, c, img):
        """(environment, what $(VAR) sees), container-side, before path translation.
        As in the kubelet, $(VAR) sees the service variables, envFrom and the env entries
        (those before it, for an env value), not the image's ENV."""
        what = "CreateContainerConfigError"
        host, port = self.sim.host, str(self.sim.port)
        visible = {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port,
                   "KUBERNETES_SERVICE_PORT_HTTPS": port,
                   "KUBERNETES_PORT": f"tcp://{host}:{port}",
                   f"KUBERNETES_PORT_{port}_TCP": f"tcp://{host}:{port}",
                   f"KUBERNETES_PORT_{port}_TCP_PROTO": "tcp",
                   f"KUBERNETES_PORT_{port}_TCP_PORT": port,
                   f"KUBERNETES_PORT_{port}_TCP_ADDR": host}
        if "kube-api-access-sim" in self.volumes:
            visible.update(self.runner.extra_env)
        for ef in c.spec.get("envFrom") or []:
            prefix = ef.get("prefix", "")
            if "secretRef" in ef or "configMapRef" in ef:
                plural = "secrets" if "secretRef" in ef else "configmaps"
                ref = ef.get("secretRef") or ef.get("configMapRef") or {}
                obj = self._object(plural, ref.get("name"), ref.get("optional", False), what)
                for k, v in self._data(plural, obj).items():
                    if ENV_NAME.match(prefix + k):
                        visible[prefix + k] = _decode(v)
        for e in c.spec.get("env") or []:
            name = e.get("name", "")
            if "valueFrom" in e:
                vf = e["valueFrom"] or {}
                if "secretKeyRef" in vf:
                    v = self._lookup_env("secrets", vf["secretKeyRef"], what)
                elif "configMapKeyRef" in vf:
                    v = self._lookup_env("configmaps", vf["configMapKeyRef"], what)
                elif "fieldRef" in vf:
                    v = self._field(vf["fieldRef"].get("fieldPath", ""))
                else:
                    raise ConfigError(what, f"env {name}: valueFrom "
                                      f"{', '.join(sorted(vf))} is not supported by the "
                                      f"k8s_sim JobRunner")
                if v is None:
                    continue
            else:
                v = expand(str(e.get("value", "")), visible.get)
            visible[name] = v
        env = dict(img.env)
        env.setdefault("PATH", ":".join(list(img.path) + [self.runner.host_path]))
        env.setdefault("HOME", "/root")
        env["HOSTNAME"] = self.pod_name
        env.update(visible)
        return env, visible

    def _prepare(self, c):
        """(argv, executable, env, cwd) for the container's next process, host-side."""
        self._build_root(c)
        img = c.image
        env, visible = self._env(c, img)
        command = c.spec.get("command") or []
        args = c.spec.get("args")
        if not command:
            command = list(img.entrypoint)
            if args is None:
                args = list(img.cmd)
        argv = [expand(str(a), visible.get) for a in list(command) + list(args or [])]
        if not argv:
            raise ConfigError("CreateContainerError", "no command specified")
        host_env = {k: c.translate(v) for k, v in env.items() if k != "PATH" and
                    "=" not in k and k}
        host_env["PATH"] = ":".join(c.translate(p) for p in env["PATH"].split(":"))
        for k in self.runner.host_env:
            if k in os.environ and k not in host_env:
                host_env[k] = os.environ[k]
        argv = [c.translate(a) for a in argv]
        wd = c.spec.get("workingDir") or img.workdir or "/"
        cwd = Path(str(c.root) + posixpath.normpath("/" + wd))
        if not cwd.is_dir():
            n = posixpath.normpath("/" + wd)
            if any(n == p or n.startswith(p + "/") for p in c.image_paths):
                raise ConfigError("CreateContainerError",
                                  f"workingDir {wd}: not a directory in image "
                                  f"{c.image_name}")
            cwd.mkdir(parents=True, exist_ok=True)
        # the logical working directory, so that shells' pwd shows the translated path
        # (getcwd() gives the host one, past the symlink)
        host_env["PWD"] = str(cwd)
        exe = argv[0]
        if "/" not in exe:
            exe = shutil.which(exe, path=host_env["PATH"])
        elif not exe.startswith("/"):
            exe = str(cwd / exe)
        return argv, exe, host_env, str(cwd)


class JobRunner:
    """The kubelet hook that runs Job Pods as local processes (see the module docstring).

    sim: the K8sSim; images: image name -> Image (or a dict container path -> host path);
    default_image: the Image for names not in `images` (None: ErrImagePull);
    workdir: where Pod directories and logs go (default: a temporary directory removed by
    close()); container_timeout: seconds a container's process may run; pending_timeout:
    seconds a container may wait for a missing Secret/ConfigMap/image before the runner
    fails the Pod; restart_backoff: first back-off of `restartPolicy: OnFailure` restarts;
    host_path: what follows the image's dirs on PATH; extra_env: variables set when the
    service-account token is mounted; host_env: variables copied from the test process;
    translate_config_files: apply the path rule inside ConfigMap volume files.
    """

    def __init__(self, sim, images=None, workdir=None, *, default_image=None,
                 container_timeout=300.0, pending_timeout=30.0, restart_backoff=1.0,
                 host_path=DEFAULT_HOST_PATH, extra_env=None, host_env=HOST_ENV,
                 translate_config_files=False, install=False):
        self.sim = sim
        self.images = {k: Image.of(v) for k, v in (images or {}).items()}
        self.default_image = Image.of(default_image)
        self._own_workdir = workdir is None
        self.workdir = Path(workdir if workdir is not None
                            else tempfile.mkdtemp(prefix="k8s-sim-jobrunner-")).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.container_timeout = float(container_timeout)
        self.pending_timeout = float(pending_timeout)
        self.restart_backoff = float(restart_backoff)
        self.host_path = host_path
        self.extra_env = dict(extra_env) if extra_env is not None else \
            {"CHARTREUSE_SERVICEACCOUNT_DIR": SA_DIR}
        self.host_env = tuple(host_env)
        self.translate_config_files = translate_config_files
        self.errors = []
        self.runs = {}          # pod uid -> PodRun
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._ips = itertools.count(2)
        if install:
            sim.kubelet_hook = self

    # --- the hook -----------------------------------------------------------------------

    def __call__(self, sim, pod):
        spec = pod.get("spec") or {}
        if spec.get("restartPolicy", "Always") not in ("Never", "OnFailure"):
            return False
        if self._closing.is_set():
            return True  # shutting down: nothing starts any more
        uid = pod["metadata"]["uid"]
        with self._lock:
            if uid in self.runs:
                return True
            run = PodRun(self, pod)
            self.runs[uid] = run
        run.start()
        return True

    def _next_ip(self):
        n = next(self._ips)
        return f"10.245.{n // 250}.{n % 250 + 1}"

    def image(self, name):
        return self.images.get(name, self.default_image)

    # --- for tests ----------------------------------------------------------------------

    def run_of(self, pod, namespace="default"):
        """The latest PodRun of the Pod named `pod` (None if the runner never took it)."""
        with self._lock:
            runs = [r for r in self.runs.values()
                    if r.pod_name == pod and r.ns == namespace]
        return runs[-1] if runs else None

    def _run(self, pod, namespace):
        r = self.run_of(pod, namespace)
        if r is None:
            raise KeyError(f"the JobRunner has not run a Pod {namespace}/{pod}")
        return r

    def wait(self, pod, namespace="default", timeout=60.0):
        """Wait until the runner is done with the Pod (its processes reaped, its status
        written); return the final phase. The Pod may still be Pending when called."""
        deadline = time.monotonic() + timeout
        while self.run_of(pod, namespace) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the JobRunner did not take the Pod {namespace}/{pod} "
                                   f"in {timeout}s")
            time.sleep(0.02)
        r = self._run(pod, namespace)
        if not r.done.wait(max(0.0, deadline - time.monotonic())):
            raise TimeoutError(f"Pod {namespace}/{pod} not finished in {timeout}s:\n"
                               + self.describe(pod, namespace))
        return r.phase

    def log_path(self, pod, container, namespace="default", attempt=None):
        """The log file of a container's last (or given, from 1) attempt."""
        r = self._run(pod, namespace)
        for c in r.inits + r.mains:
            if c.name == container:
                if not c.log_files:
                    return None
                return c.log_files[-1] if attempt is None else c.log_files[attempt - 1]
        raise KeyError(f"Pod {namespace}/{pod} has no container {container!r}")

    def logs(self, pod, container=None, namespace="default"):
        """What a container printed (stdout and stderr, interleaved) in its last attempt;
        without `container`, every container that ran, each under a `==> name <==` line."""
        r = self._run(pod, namespace)
        if container is not None:
            p = self.log_path(pod, container, namespace)
            return p.read_text(errors="replace") if p and p.exists() else ""
        parts = []
        for c in r.inits + r.mains:
            if c.log_path and c.log_path.exists():
                parts.append(f"==> {c.name} <==\n{c.log_path.read_text(errors='replace')}")
        return "\n".join(parts)

    def container_log(self, namespace, pod, uid, container, previous=False):
        """What the API serves as pods/{pod}/log (server.py): the bytes the container
        printed in its current attempt (`previous`: the one before). None when the runner
        did not run that Pod (by uid), that container has not started, or there is no
        previous attempt."""
        with self._lock:
            r = self.runs.get(uid)
        if r is None or (r.ns, r.pod_name) != (namespace, pod):
            return None
        c = next((c for c in r.inits + r.mains if c.name == container), None)
        files = c.log_files if c is not None else []
        want = -2 if previous else -1
        if len(files) < -want:
            return None
        try:
            return files[want].read_bytes()
        except FileNotFoundError:
            return None

    def describe(self, pod, namespace="default"):
        """A summary for assertion messages: phase, each container's state, log tails."""
        r = self.run_of(pod, namespace)
        if r is None:
            return f"Pod {namespace}/{pod}: not run by the JobRunner"
        lines = [f"Pod {namespace}/{pod}: phase {r.phase}"
                 + (f" ({r.reason}: {r.message})" if r.reason else "")]
        for c in r.inits + r.mains:
            kind = "init container" if c.init else "container"
            lines.append(f"  {kind} {c.name} [{c.image_name}] restarts={c.restarts} "
                         f"state={c.state}")
            tail = _tail(c.log_path, 40) if c.log_path else ""
            if tail:
                lines += ["    | " + l for l in tail.splitlines()]
        return "\n".join(lines)

    def running(self):
        """Names (ns/pod/container) of the containers whose process still runs."""
        out = []
        with self._lock:
            runs = list(self.runs.values())
        for r in runs:
            for c in r.inits + r.mains:
                p = c.proc
                if p is not None and p.poll() is None:
                    out.append(f"{r.ns}/{r.pod_name}/{c.name}")
        return out

    def close(self, timeout=10.0):
        """Kill every process still running (SIGKILL to its process group) and wait for
        the Pods' threads. Called by sim.stop()."""
        self._closing.set()
        with self._lock:
            runs = list(self.runs.values())
        for r in runs:
            for c in r.inits + r.mains:
                r._kill_group(c, signal.SIGKILL)
        end = time.monotonic() + timeout
        for r in runs:
            r.join(max(0.0, end - time.monotonic()))
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
