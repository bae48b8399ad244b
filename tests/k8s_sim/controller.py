"""Simulated controllers: what makes Pods come and go when a Deployment is scaled or a Job
runs.

One thread (`ControllerManager`) reads the store's change history like an informer and runs
small reconcilers, each reacting to events and to its own timers:

- `DeploymentController`: a ReplicaSet per pod-template hash (owned by the Deployment), the
  current one sized to `spec.replicas`, older ones to 0; Deployment status (replicas,
  updated/ready/available, observedGeneration, conditions) follows the Pods.
- `ReplicaSetController`: creates Pods (labels from the template, `ownerReferences` to the
  ReplicaSet, bound to node `sim-node`) and deletes surplus ones gracefully (not-ready and
  newest first). Active Pods are those neither terminating nor Failed/Succeeded, exactly as
  the real controller counts them: so `status.replicas` drops as soon as Pods are
  *Terminating*, while the Pods themselves are still listed until the kubelet is done - the
  reason a client must wait for the Pods, not for the Deployment status.
- `JobController`: batch/v1 Jobs as the 1.31 controller runs them (its docstring has the
  details): Pods from the template, counted with the job-tracking finalizer,
  SuccessCriteriaMet/Complete or FailureTarget/Failed, backoffLimit, activeDeadlineSeconds.
- `Kubelet`: a Pending Pod becomes Running and Ready after the start delay; a terminating
  Pod disappears (DELETED) after the stop delay. A run-to-completion Pod (a Job's, or one
  with `restartPolicy` Never/OnFailure annotated `sim.chartreuse.test/exit-code`) then
  exits after the run delay: Succeeded, or Failed with that exit code. Delays come from the
  annotations `sim.chartreuse.test/start-delay` / `stop-delay` / `run-delay` on the Pod or
  on its owner (ReplicaSet, Deployment, Job), else from `sim.pod_start_delay` /
  `pod_stop_delay` / `pod_run_delay`. `sim.kubelet_hook(sim, pod)`, called when the start
  delay is over, may take over running a Pod (a job runner plugs in there): it returns
  True and sets the Pod's phase itself. With `sim.pods_stop_once_watched`, a terminating
  Pod's stop delay starts only while a client watches Pods: a run's calls then come in the
  same order however slow the machine is (the fault matrix aims at the nth call).
- `GarbageCollector`: dependents of a deleted owner (by `ownerReferences` uid) are deleted
  (background), or first when the owner carries the `foregroundDeletion` finalizer.
- `DisruptionController`: PodDisruptionBudget status from the selected Pods.
- `HpaController` (off unless `sim.hpa_controller`): raises a Deployment below
  `minReplicas` back up unless `spec.behavior.scaleUp.selectPolicy` is `Disabled`; like the
  real one it leaves a Deployment at 0 alone (scaling is then disabled).

StatefulSets, DaemonSets and CronJobs are stored as written (no controller).
"""
import calendar
import copy
import hashlib
import heapq
import itertools
import sys
import threading
import time
import traceback

from .api import Ctx, SIM_ANNOTATION_PREFIX, now_rfc3339, random_suffix

ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
NODE = "sim-node"
EXIT_CODE_ANNOTATION = SIM_ANNOTATION_PREFIX + "exit-code"
JOB_TRACKING = "batch.kubernetes.io/job-tracking"


def template_hash(template):
    digest = hashlib.sha256(repr(_canonical(template)).encode()).digest()
    return "".join(ALPHABET[b % len(ALPHABET)] for b in digest[:10])


def _canonical(v):
    if isinstance(v, dict):
        return tuple(sorted((k, _canonical(x)) for k, x in v.items()))
    if isinstance(v, list):
        return tuple(_canonical(x) for x in v)
    return v


def controller_of(obj):
    for r in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if r.get("controller"):
            return r
    return None


def is_active(pod):
    return not pod["metadata"].get("deletionTimestamp") and \
        (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded")


def is_ready(pod):
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


class ControllerManager(threading.Thread):
    def __init__(self, sim):
        super().__init__(name="k8s-sim-controllers", daemon=True)
        self.sim, self.store, self.api = sim, sim.store, sim.api
        self.ctx = Ctx(manager="k8s-sim-controller", raw_status=True)
        self.cursor = 0
        self.processed_rv = 0
        self._timers = []
        self._seq = itertools.count()
        self.errors = []
        reg = sim.registry
        self.rt_pod = reg.by_path("", "v1", "pods")
        self.rt_rs = reg.by_path("apps", "v1", "replicasets")
        self.rt_deploy = reg.by_path("apps", "v1", "deployments")
        self.rt_hpa = reg.by_path("autoscaling", "v2", "horizontalpodautoscalers")
        self.rt_job = reg.by_path("batch", "v1", "jobs")
        self.rt_event = reg.by_path("", "v1", "events")
        self.rt_pdb = reg.by_path("policy", "v1", "poddisruptionbudgets")
        self.kubelet = Kubelet(self)
        self.reconcilers = [GarbageCollector(self), DeploymentController(self),
                            ReplicaSetController(self), JobController(self), self.kubelet,
                            DisruptionController(self), HpaController(self)]

    # --- plumbing -----------------------------------------------------------------------

    def schedule(self, delay, fn):
        with self.store.lock:
            heapq.heappush(self._timers, (time.monotonic() + max(0.0, delay), next(self._seq),
                                          fn))
            self.store.cond.notify_all()

    def mutate(self, rt, ns, name, fn, uid=None):
        """Read-modify-write under the store lock (no conflicts possible)."""
        with self.store.lock:
            cur = self.store.get(rt.group, rt.plural, ns, name)
            if cur is None or (uid and cur["metadata"].get("uid") != uid):
                return None
            new = copy.deepcopy(cur)
            if fn(new) is False or new == cur:
                return cur
            return self.api._store_update(rt, ns, name, cur, new, self.ctx)

    def _guard(self, what, fn, *args):
        try:
            fn(*args)
        except Exception as e:  # keep the loop alive; tests can assert sim.controller_errors
            self.errors.append(f"{what}: {e!r}")
            print(f"k8s-sim controller error in {what}:", file=sys.stderr)
            traceback.print_exc()

    def run(self):
        store = self.store
        while True:
            events, due = [], []
            with store.lock:
                while True:
                    if store.stopping:
                        return
                    try:
                        events = store.events_since(self.cursor)
                    except LookupError:  # compacted under us: resync everything
                        self.cursor = store.rv
                        for r in self.reconcilers:
                            r.resync()
                        events = []
                    now = time.monotonic()
                    while self._timers and self._timers[0][0] <= now:
                        due.append(heapq.heappop(self._timers)[2])
                    if events or due:
                        break
                    self.processed_rv = self.cursor
                    wait = self._timers[0][0] - now if self._timers else None
                    store.cond.wait(wait)
                if events:
                    self.cursor = events[-1].rv
            for ev in events:
                for r in self.reconcilers:
                    self._guard(f"{type(r).__name__}.observe", r.observe, ev)
            for fn in due:
                self._guard(getattr(fn, "__name__", "timer"), fn)
            progress = True
            while progress:
                progress = False
                for r in self.reconcilers:
                    while r.dirty:
                        key = r.dirty.pop(0)
                        progress = True
                        self._guard(f"{type(r).__name__}.reconcile{key}", r.reconcile, *key)

    def idle(self):
        """True when every change so far has been processed and no timer is due."""
        with self.store.lock:
            due = self._timers and self._timers[0][0] <= time.monotonic()
            return self.processed_rv >= self.store.rv and not due


class Reconciler:
    def __init__(self, mgr):
        self.mgr, self.sim, self.store, self.api = mgr, mgr.sim, mgr.store, mgr.api
        self.dirty = []

    def mark(self, *key):
        if key not in self.dirty:
            self.dirty.append(key)

    def observe(self, ev):
        pass

    def reconcile(self, *key):
        pass

    def resync(self):
        pass

    def pods_owned_by(self, ns, uids):
        return [p for p in self.store.list("", "pods", ns)
                if (controller_of(p) or {}).get("uid") in uids]


class DeploymentController(Reconciler):
    def observe(self, ev):
        if (ev.group, ev.plural) == ("apps", "deployments"):
            self.mark(ev.namespace, ev.name)
        elif (ev.group, ev.plural) == ("apps", "replicasets"):
            ref = controller_of(ev.obj)
            if ref and ref.get("kind") == "Deployment":
                self.mark(ev.namespace, ref["name"])
        elif (ev.group, ev.plural) == ("", "pods"):
            ref = controller_of(ev.obj)
            if ref and ref.get("kind") == "ReplicaSet":
                rs = self.store.get("apps", "replicasets", ev.namespace, ref["name"])
                dref = controller_of(rs) if rs else None
                if dref and dref.get("kind") == "Deployment":
                    self.mark(ev.namespace, dref["name"])

    def resync(self):
        for d in self.store.list("apps", "deployments"):
            self.mark(d["metadata"]["namespace"], d["metadata"]["name"])

    def reconcile(self, ns, name):
        with self.store.lock:
            d = self.store.get("apps", "deployments", ns, name)
            if d is None or d["metadata"].get("deletionTimestamp"):
                return
            uid = d["metadata"]["uid"]
            spec = d.get("spec") or {}
            replicas = spec.get("replicas", 1)
            h = template_hash(spec.get("template") or {})
            owned = [rs for rs in self.store.list("apps", "replicasets", ns)
                     if (controller_of(rs) or {}).get("uid") == uid]
            current = next((rs for rs in owned
                            if rs["metadata"].get("labels", {}).get("pod-template-hash") == h),
                           None)
            revision = 1 + max([int(rs["metadata"].get("annotations", {}).get(
                "deployment.kubernetes.io/revision", "0")) for rs in owned] or [0])
            if current is None:
                current = self._create_rs(d, h, replicas, revision)
                owned.append(current)
            elif current["spec"].get("replicas") != replicas:
                self._scale_rs(current, replicas)
            for rs in owned:
                if rs is not current and rs["spec"].get("replicas", 0) != 0:
                    self._scale_rs(rs, 0)
            uids = {rs["metadata"]["uid"] for rs in owned}
            pods = [p for p in self.pods_owned_by(ns, uids) if is_active(p)]
            cur_uid = current["metadata"]["uid"]
            updated = [p for p in pods if controller_of(p)["uid"] == cur_uid]
            ready = [p for p in pods if is_ready(p)]
            self._status(d, replicas, len(pods), len(updated), len(ready),
                         current["metadata"]["name"])

    def _create_rs(self, d, h, replicas, revision):
        meta, spec = d["metadata"], d["spec"]
        tmpl = copy.deepcopy(spec.get("template") or {})
        tmeta = tmpl.setdefault("metadata", {})
        tmeta.setdefault("labels", {})["pod-template-hash"] = h
        sel = copy.deepcopy(spec.get("selector") or {})
        sel.setdefault("matchLabels", {})["pod-template-hash"] = h
        annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                       if not k.startswith("kubectl.kubernetes.io/")}
        annotations.update({"deployment.kubernetes.io/revision": str(revision),
                            "deployment.kubernetes.io/desired-replicas": str(replicas)})
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": f"{meta['name']}-{h}", "namespace": meta["namespace"],
                           "labels": dict(tmeta["labels"]), "annotations": annotations,
                           "ownerReferences": [{
                               "apiVersion": "apps/v1", "kind": "Deployment",
                               "name": meta["name"], "uid": meta["uid"], "controller": True,
                               "blockOwnerDeletion": True}]},
              "spec": {"replicas": replicas, "minReadySeconds": spec.get("minReadySeconds", 0),
                       "selector": sel, "template": tmpl}}
        return self.api.create(self.mgr.rt_rs, meta["namespace"], rs, self.mgr.ctx)

    def _scale_rs(self, rs, replicas):
        m = rs["metadata"]

        def set_replicas(o):
            o["spec"]["replicas"] = replicas
            o["metadata"].setdefault("annotations", {})[
                "deployment.kubernetes.io/desired-replicas"] = str(replicas)
        self.mgr.mutate(self.mgr.rt_rs, m["namespace"], m["name"], set_replicas, m["uid"])

    def _status(self, d, want, total, updated, ready, rs_name):
        m = d["metadata"]
        old = d.get("status") or {}
        available = ready
        status = {"observedGeneration": m.get("generation", 1)}
        if total:
            status["replicas"] = total
        if updated:
            status["updatedReplicas"] = updated
        if ready:
            status["readyReplicas"] = ready
        if available:
            status["availableReplicas"] = available
        if want - available > 0:
            status["unavailableReplicas"] = want - available
        old_conds = {c["type"]: c for c in old.get("conditions") or []}
        now = now_rfc3339()

        def cond(typ, ok, reason, message):
            prev = old_conds.get(typ)
            st = "True" if ok else "False"
            c = {"type": typ, "status": st, "reason": reason, "message": message,
                 "lastUpdateTime": now, "lastTransitionTime": now}
            if prev and prev.get("status") == st:
                c["lastTransitionTime"] = prev.get("lastTransitionTime", now)
                if prev.get("reason") == reason:
                    c["lastUpdateTime"] = prev.get("lastUpdateTime", now)
            return c
        avail_ok = available >= want
        progressing_done = updated == want and total == want and available == want
        status["conditions"] = [
            cond("Available", avail_ok,
                 "MinimumReplicasAvailable" if avail_ok else "MinimumReplicasUnavailable",
                 "Deployment has minimum availability." if avail_ok else
                 "Deployment does not have minimum availability."),
            cond("Progressing", True,
                 "NewReplicaSetAvailable" if progressing_done else "ReplicaSetUpdated",
                 f'ReplicaSet "{rs_name}" has successfully progressed.' if progressing_done
                 else f'ReplicaSet "{rs_name}" is progressing.')]
        if status == old:
            return

        def set_status(o):
            o["status"] = status
        self.mgr.mutate(self.mgr.rt_deploy, m["namespace"], m["name"], set_status, m["uid"])


class ReplicaSetController(Reconciler):
    def observe(self, ev):
        if (ev.group, ev.plural) == ("apps", "replicasets") and ev.type != "DELETED":
            self.mark(ev.namespace, ev.name)
        elif (ev.group, ev.plural) == ("", "pods"):
            ref = controller_of(ev.obj)
            if ref and ref.get("kind") == "ReplicaSet":
                self.mark(ev.namespace, ref["name"])

    def resync(self):
        for rs in self.store.list("apps", "replicasets"):
            self.mark(rs["metadata"]["namespace"], rs["metadata"]["name"])

    def reconcile(self, ns, name):
        with self.store.lock:
            rs = self.store.get("apps", "replicasets", ns, name)
            if rs is None or rs["metadata"].get("deletionTimestamp"):
                return
            want = (rs.get("spec") or {}).get("replicas", 1)
            pods = self.pods_owned_by(ns, {rs["metadata"]["uid"]})
            active = [p for p in pods if is_active(p)]
            if len(active) < want:
                for _ in range(want - len(active)):
                    active.append(self._create_pod(rs))
            elif len(active) > want:
                # delete not-ready first, then the newest
                not_ready = [p for p in active if not is_ready(p)]
                ready = sorted([p for p in active if is_ready(p)],
                               key=lambda p: (p["metadata"].get("creationTimestamp", ""),
                                              p["metadata"]["name"]), reverse=True)
                for p in (not_ready + ready)[:len(active) - want]:
                    self.api.delete(self.mgr.rt_pod, ns, p["metadata"]["name"], self.mgr.ctx)
                    active.remove(p)
            ready_n = sum(1 for p in active if is_ready(p))
            labels = ((rs["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
            status = {"replicas": len(active), "observedGeneration":
                      rs["metadata"].get("generation", 1)}
            if active:
                status["fullyLabeledReplicas"] = sum(
                    1 for p in active
                    if all(p["metadata"].get("labels", {}).get(k) == v
                           for k, v in labels.items()))
            if ready_n:
                status["readyReplicas"] = ready_n
                status["availableReplicas"] = ready_n
            if status != rs.get("status"):
                def set_status(o):
                    o["status"] = status
                self.mgr.mutate(self.mgr.rt_rs, ns, name, set_status, rs["metadata"]["uid"])

    def _create_pod(self, rs):
        m = rs["metadata"]
        tmpl = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
        tmeta = tmpl.get("metadata") or {}
        spec = tmpl.get("spec") or {}
        spec["nodeName"] = NODE
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": f"{m['name']}-{random_suffix()}",
                            "generateName": f"{m['name']}-",
                            "namespace": m["namespace"],
                            "labels": dict(tmeta.get("labels") or {}),
                            "ownerReferences": [{
                                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                                "name": m["name"], "uid": m["uid"], "controller": True,
                                "blockOwnerDeletion": True}]},
               "spec": spec}
        if tmeta.get("annotations"):
            pod["metadata"]["annotations"] = dict(tmeta["annotations"])
        ctx = Ctx(manager="kube-controller-manager")
        return self.api.create(self.mgr.rt_pod, m["namespace"], pod, ctx)


class Kubelet(Reconciler):
    def __init__(self, mgr):
        super().__init__(mgr)
        self.starting, self.stopping = set(), set()
        self.held_stops = []  # (delay, ns, name, uid) until a watch on Pods is open
        self.pod_watches = 0
        self._ips = itertools.count(2)

    def pod_watch(self, opened):
        """A watch on Pods opened (True) or ended: the held stops go on while one is open."""
        with self.store.lock:
            self.pod_watches += 1 if opened else -1
            held, self.held_stops = self.held_stops, []
        for stop in held:
            self._stop_later(*stop)

    def _stop_later(self, delay, ns, name, uid):
        with self.store.lock:
            if self.sim.pods_stop_once_watched and self.pod_watches == 0:
                self.held_stops.append((delay, ns, name, uid))
                return
        self.mgr.schedule(delay, lambda: self._finish_stop(ns, name, uid))

    def annotation(self, pod, key):
        """The value of `key` on the Pod, else on its owning ReplicaSet/Deployment or Job
        (None when nowhere)."""
        obj = pod
        for _ in range(3):
            if obj is None:
                break
            ann = (obj.get("metadata") or {}).get("annotations") or {}
            if key in ann:
                return ann[key]
            ref = controller_of(obj)
            if not ref:
                break
            ns = obj["metadata"].get("namespace", "")
            if ref.get("kind") == "ReplicaSet":
                obj = self.store.get("apps", "replicasets", ns, ref["name"])
            elif ref.get("kind") == "Deployment":
                obj = self.store.get("apps", "deployments", ns, ref["name"])
            elif ref.get("kind") == "Job":
                obj = self.store.get("batch", "jobs", ns, ref["name"])
            else:
                break
        return None

    def delay(self, pod, which):
        """Seconds for `which` (start/stop/run): annotation `sim.chartreuse.test/<which>-delay`
        on the Pod or its owner, else the simulator's default."""
        value = self.annotation(pod, f"{SIM_ANNOTATION_PREFIX}{which}-delay")
        if value is not None:
            try:
                return float(value)
            except ValueError:
                pass
        return {"start": self.sim.pod_start_delay, "stop": self.sim.pod_stop_delay,
                "run": self.sim.pod_run_delay}[which]

    def exit_code(self, pod):
        """The exit code a run-to-completion Pod ends with, or None for a Pod that keeps
        running: Pods of a Job end with 0 unless `sim.chartreuse.test/exit-code` (on the Pod,
        its template, or the Job) says otherwise; other Pods with restartPolicy Never or
        OnFailure end only when so annotated."""
        spec = pod.get("spec") or {}
        if spec.get("restartPolicy", "Always") == "Always":
            return None
        value = self.annotation(pod, EXIT_CODE_ANNOTATION)
        if value is None:
            return 0 if (controller_of(pod) or {}).get("kind") == "Job" else None
        try:
            return int(value)
        except ValueError:
            return 1

    def observe(self, ev):
        if (ev.group, ev.plural) != ("", "pods") or not self.sim.kubelet_enabled:
            return
        pod = ev.obj
        m = pod["metadata"]
        uid = m["uid"]
        if ev.type == "DELETED":
            self.starting.discard(uid)
            self.stopping.discard(uid)
            return
        if m.get("deletionTimestamp"):
            if uid not in self.stopping:
                self.stopping.add(uid)
                ns, name = m.get("namespace", ""), m["name"]
                self._stop_later(self.delay(pod, "stop"), ns, name, uid)
            return
        if (pod.get("status") or {}).get("phase", "Pending") == "Pending" and \
                uid not in self.starting:
            self.starting.add(uid)
            self.mark(m.get("namespace", ""), m["name"], uid)

    def reconcile(self, ns, name, uid):
        """A new Pending Pod: bind it, show it creating, start it after the delay."""
        pod = self.store.get("", "pods", ns, name)
        if pod is None or pod["metadata"]["uid"] != uid:
            return

        def creating(o):
            spec, status = o.setdefault("spec", {}), o.setdefault("status", {})
            spec.setdefault("nodeName", NODE)
            status["conditions"] = [{"type": "PodScheduled", "status": "True",
                                     "lastProbeTime": None,
                                     "lastTransitionTime": now_rfc3339()}]
            status["hostIP"] = "10.0.0.1"
            status["startTime"] = now_rfc3339()
            status["containerStatuses"] = [
                {"name": c.get("name"), "image": c.get("image", ""), "imageID": "",
                 "ready": False, "started": False, "restartCount": 0,
                 "state": {"waiting": {"reason": "ContainerCreating"}}}
                for c in spec.get("containers") or []]
        self.mgr.mutate(self.mgr.rt_pod, ns, name, creating, uid)
        self.mgr.schedule(self.delay(pod, "start"), lambda: self._finish_start(ns, name, uid))

    def _finish_start(self, ns, name, uid):
        pod = self.store.get("", "pods", ns, name)
        if pod is None or pod["metadata"]["uid"] != uid or pod["metadata"].get(
                "deletionTimestamp") or (pod.get("status") or {}).get("phase") != "Pending":
            return
        hook = self.sim.kubelet_hook
        if hook is not None and hook(self.sim, copy.deepcopy(pod)):
            return
        n = next(self._ips)
        ip = f"10.244.{n // 250}.{n % 250 + 1}"

        def running(o):
            now = now_rfc3339()
            spec, status = o.get("spec") or {}, o.setdefault("status", {})
            status.update({
                "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                "hostIPs": [{"ip": "10.0.0.1"}],
                "conditions": [
                    {"type": t, "status": "True", "lastProbeTime": None,
                     "lastTransitionTime": now}
                    for t in ("PodReadyToStartContainers", "Initialized", "Ready",
                              "ContainersReady", "PodScheduled")],
                "containerStatuses": [
                    {"name": c.get("name"), "image": c.get("image", ""),
                     "imageID": f"docker.io/library/{c.get('image', '')}",
                     "containerID": f"containerd://{uid.replace('-', '')}{i}",
                     "ready": True, "started": True, "restartCount": 0,
                     "state": {"running": {"startedAt": now}}}
                    for i, c in enumerate(spec.get("containers") or [])]})
            if spec.get("initContainers"):
                status["initContainerStatuses"] = [
                    {"name": c.get("name"), "image": c.get("image", ""), "ready": True,
                     "restartCount": 0,
                     "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                              "startedAt": now, "finishedAt": now}}}
                    for c in spec["initContainers"]]
        self.mgr.mutate(self.mgr.rt_pod, ns, name, running, uid)
        code = self.exit_code(pod)
        if code is not None:
            self.mgr.schedule(self.delay(pod, "run"),
                              lambda: self._finish_run(ns, name, uid, code))

    def _finish_run(self, ns, name, uid, code):
        """A run-to-completion Pod's containers exit: Succeeded (0) or Failed."""
        pod = self.store.get("", "pods", ns, name)
        if pod is None or pod["metadata"]["uid"] != uid or \
                pod["metadata"].get("deletionTimestamp") or \
                (pod.get("status") or {}).get("phase") != "Running":
            return

        def terminated(o):
            now = now_rfc3339()
            status = o.setdefault("status", {})
            status["phase"] = "Succeeded" if code == 0 else "Failed"
            reason = "PodCompleted" if code == 0 else "PodFailed"
            status["conditions"] = [
                dict(c, status="False", reason=reason, lastTransitionTime=now)
                if c.get("type") in ("Ready", "ContainersReady") else
                dict(c, status="False", lastTransitionTime=now)
                if c.get("type") == "PodReadyToStartContainers" else c
                for c in status.get("conditions") or []]
            status["containerStatuses"] = [
                dict(c, ready=False, started=False, state={"terminated": {
                    "exitCode": code, "reason": "Completed" if code == 0 else "Error",
                    "containerID": c.get("containerID", ""),
                    "startedAt": (c.get("state", {}).get("running") or {}).get("startedAt",
                                                                                 now),
                    "finishedAt": now}})
                for c in status.get("containerStatuses") or []]
        self.mgr.mutate(self.mgr.rt_pod, ns, name, terminated, uid)

    def _finish_stop(self, ns, name, uid):
        from .api import ApiError
        pod = self.store.get("", "pods", ns, name)
        if pod is None or pod["metadata"]["uid"] != uid:
            return
        try:
            self.api.delete(self.mgr.rt_pod, ns, name, self.mgr.ctx,
                            {"gracePeriodSeconds": 0,
                             "preconditions": {"uid": uid}})
        except ApiError as e:
            if e.code not in (404, 409):
                raise


def _condition(status, typ):
    for c in status.get("conditions") or []:
        if c.get("type") == typ and c.get("status") == "True":
            return c
    return None


def _pod_failed(pod):
    """As the Job controller counts: Failed, or terminating without having succeeded (an
    orphaned or evicted Pod never reaches Failed)."""
    phase = (pod.get("status") or {}).get("phase")
    return phase == "Failed" or (bool(pod["metadata"].get("deletionTimestamp")) and
                                 phase != "Succeeded")


class JobController(Reconciler):
    """batch/v1 Jobs, as the Kubernetes 1.31 Job controller runs a NonIndexed Job.

    - Pods are made from `spec.template` (name `<job>-<5 random>`, the Job's
      `controller-uid`/`job-name` labels, a controlling ownerReference, bound to the node)
      until `spec.completions` succeeded, at most `spec.parallelism` at a time.
    - Finished Pods are counted with the `batch.kubernetes.io/job-tracking` finalizer, as
      the real controller does: a Pod is created with it, and once the Pod is Succeeded or
      Failed (or terminating: counted as failed) it is added to `status.succeeded`/
      `status.failed` and the finalizer is removed in the same atomic step. So the counts
      survive the Pods being deleted, and a Job's Pods stay listed until counted.
    - Success: `SuccessCriteriaMet` (reason CompletionsReached), then, once no Pod is left
      running, `Complete` and `completionTime`. Failure: more failed Pods than
      `spec.backoffLimit` (`BackoffLimitExceeded`) or `spec.activeDeadlineSeconds` past
      (`DeadlineExceeded`): `FailureTarget`, the active Pods deleted, then `Failed`. Each
      step is its own write, so a watcher sees the intermediate state.
    - After a failure below the limit a new Pod is created at once (the real controller
      waits 10 s, 20 s, 40 s... first). `ttlSecondsAfterFinished`, `suspend`, Indexed
      completion, `podFailurePolicy`, `successPolicy` and `podReplacementPolicy` are not
      simulated; a `restartPolicy: OnFailure` Pod fails like a `Never` one (no in-place
      container restarts).
    - Pods of a Job that is gone or being deleted, and Pods orphaned (propagationPolicy
      Orphan), lose the finalizer, so the garbage collector can delete them or they stay
      as plain Pods.
    """

    def __init__(self, mgr):
        super().__init__(mgr)
        self.refused = set()  # uids of the Jobs whose Pod admission refused

    def observe(self, ev):
        if (ev.group, ev.plural) == ("batch", "jobs"):
            if ev.type != "DELETED":
                self.mark("job", ev.namespace, ev.name)
            self.mark("orphans", ev.namespace, ev.obj["metadata"].get("uid", ""))
        elif (ev.group, ev.plural) == ("", "pods"):
            ref = controller_of(ev.obj)
            tracked = ev.type != "DELETED" and \
                JOB_TRACKING in (ev.obj["metadata"].get("finalizers") or [])
            if ref and ref.get("kind") == "Job":
                job = self.store.get("batch", "jobs", ev.namespace, ref["name"])
                if job is not None and job["metadata"]["uid"] == ref.get("uid"):
                    self.mark("job", ev.namespace, ref["name"])
                elif tracked:
                    self.mark("orphans", ev.namespace, ref.get("uid", ""))
            elif tracked:  # orphaned (propagationPolicy Orphan): no Job counts it any more
                self.mark("orphans", ev.namespace, "")

    def resync(self):
        for j in self.store.list("batch", "jobs"):
            self.mark("job", j["metadata"]["namespace"], j["metadata"]["name"])

    def reconcile(self, what, ns, name):
        if what == "orphans":
            return self._release_orphans(ns, name)
        with self.store.lock:
            job = self.store.get("batch", "jobs", ns, name)
            if job is None:
                return
            if job["metadata"].get("deletionTimestamp"):
                return self._release_orphans(ns, job["metadata"]["uid"])
            self._sync(job)

    def _release_orphans(self, ns, job_uid):
        """Remove the tracking finalizer from Pods whose Job is gone or being deleted."""
        with self.store.lock:
            for p in self.store.list("", "pods", ns):
                if JOB_TRACKING not in (p["metadata"].get("finalizers") or []):
                    continue
                ref = controller_of(p) or {}
                if ref.get("kind") != "Job":
                    self._drop_finalizer(p)
                    continue
                if job_uid and ref.get("uid") != job_uid:
                    continue
                job = self.store.get("batch", "jobs", ns, ref.get("name", ""))
                if job is not None and job["metadata"]["uid"] == ref.get("uid") and \
                        not job["metadata"].get("deletionTimestamp"):
                    continue
                self._drop_finalizer(p)

    def _drop_finalizer(self, pod):
        m = pod["metadata"]

        def drop(o):
            fins = [f for f in o["metadata"].get("finalizers") or [] if f != JOB_TRACKING]
            if fins:
                o["metadata"]["finalizers"] = fins
            else:
                o["metadata"].pop("finalizers", None)
        self.mgr.mutate(self.mgr.rt_pod, m["namespace"], m["name"], drop, m["uid"])

    def _sync(self, job):
        meta, spec = job["metadata"], job.get("spec") or {}
        ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
        status = copy.deepcopy(job.get("status") or {})
        pods = self.pods_owned_by(ns, {uid})
        # count the finished Pods not counted yet, and let them go
        for p in pods:
            if JOB_TRACKING not in (p["metadata"].get("finalizers") or []):
                continue
            phase = (p.get("status") or {}).get("phase")
            if phase == "Succeeded":
                status["succeeded"] = status.get("succeeded", 0) + 1
            elif _pod_failed(p):
                status["failed"] = status.get("failed", 0) + 1
            else:
                continue
            self._drop_finalizer(p)
        pods = self.pods_owned_by(ns, {uid})
        active = [p for p in pods if is_active(p)]
        terminating = [p for p in pods if p["metadata"].get("deletionTimestamp") and
                       (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        now = now_rfc3339()
        finished = _condition(status, "Complete") or _condition(status, "Failed")
        if spec.get("suspend"):
            return self._write(job, status, active, terminating)
        if not finished:
            status.setdefault("startTime", now)
            completions = spec.get("completions", 1)
            parallelism = spec.get("parallelism", 1)
            target = _condition(status, "SuccessCriteriaMet") or \
                _condition(status, "FailureTarget")
            if target is None:
                deadline = spec.get("activeDeadlineSeconds")
                elapsed = time.time() - _epoch(status["startTime"])
                if status.get("succeeded", 0) >= completions:
                    target = self._add_condition(
                        status, "SuccessCriteriaMet", "CompletionsReached",
                        "Reached expected number of succeeded pods", now)
                elif status.get("failed", 0) > spec.get("backoffLimit", 6):
                    target = self._add_condition(
                        status, "FailureTarget", "BackoffLimitExceeded",
                        "Job has reached the specified backoff limit", now)
                elif deadline is not None and elapsed >= deadline:
                    target = self._add_condition(
                        status, "FailureTarget", "DeadlineExceeded",
                        "Job was active longer than specified deadline", now)
                elif deadline is not None:
                    self.mgr.schedule(deadline - elapsed + 0.01,
                                      lambda: self.mark("job", ns, name))
            if target is None:
                want = min(parallelism, completions - status.get("succeeded", 0))
                for _ in range(max(0, want - len(active))):
                    pod = self._create_pod_or_event(job)
                    if pod is None:
                        break
                    active.append(pod)
            else:
                self._write(job, status, active, terminating)
                for p in active:
                    self.api.delete(self.mgr.rt_pod, ns, p["metadata"]["name"],
                                    self.mgr.ctx, {"preconditions":
                                                   {"uid": p["metadata"]["uid"]}})
                pods = self.pods_owned_by(ns, {uid})
                active = [p for p in pods if is_active(p)]
                terminating = [p for p in pods if p["metadata"].get("deletionTimestamp")
                               and (p.get("status") or {}).get("phase")
                               not in ("Succeeded", "Failed")]
                if not active and not terminating:
                    job = self.store.get("batch", "jobs", ns, name)
                    status = copy.deepcopy(job.get("status") or {})
                    if target["type"] == "SuccessCriteriaMet":
                        self._add_condition(status, "Complete", target["reason"],
                                            target["message"], now)
                        status["completionTime"] = now
                    else:
                        self._add_condition(status, "Failed", target["reason"],
                                            target["message"], now)
        self._write(job, status, active, terminating)

    @staticmethod
    def _add_condition(status, typ, reason, message, now):
        c = {"type": typ, "status": "True", "reason": reason, "message": message,
             "lastProbeTime": now, "lastTransitionTime": now}
        status["conditions"] = [x for x in status.get("conditions") or []
                                if x.get("type") != typ] + [c]
        return c

    def _write(self, job, status, active, terminating):
        m = job["metadata"]
        status = dict(status)
        if active:
            status["active"] = len(active)
        else:
            status.pop("active", None)
        status["ready"] = sum(1 for p in active if is_ready(p))
        status["terminating"] = len(terminating)
        status["uncountedTerminatedPods"] = {}

        def set_status(o):
            o["status"] = status
        self.mgr.mutate(self.mgr.rt_job, m["namespace"], m["name"], set_status, m["uid"])

    def _create_pod_or_event(self, job):
        """A Pod admission refuses (Pod Security) is a FailedCreate Event on the Job, as the
        real Job controller records it; the Job then has no Pod (recorded once per Job,
        where the real one retries with a backoff that never succeeds either)."""
        from .api import ApiError
        try:
            return self._create_pod(job)
        except ApiError as e:
            if e.code != 403:
                raise
            m = job["metadata"]
            if m["uid"] in self.refused:
                return None
            self.refused.add(m["uid"])
            ev = {"apiVersion": "v1", "kind": "Event",
                  "metadata": {"name": f"{m['name']}.{random_suffix()}",
                               "namespace": m["namespace"]},
                  "involvedObject": {"apiVersion": "batch/v1", "kind": "Job",
                                     "name": m["name"], "namespace": m["namespace"],
                                     "uid": m["uid"]},
                  "reason": "FailedCreate", "type": "Warning",
                  "message": f"Error creating: {e.message}",
                  "source": {"component": "job-controller"}, "count": 1}
            self.api.create(self.mgr.rt_event, m["namespace"], ev,
                            Ctx(manager="kube-controller-manager"))
            return None

    def _create_pod(self, job):
        m = job["metadata"]
        tmpl = copy.deepcopy((job.get("spec") or {}).get("template") or {})
        tmeta = tmpl.get("metadata") or {}
        spec = tmpl.get("spec") or {}
        spec["nodeName"] = NODE
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": f"{m['name']}-{random_suffix()}",
                            "generateName": f"{m['name']}-",
                            "namespace": m["namespace"],
                            "labels": dict(tmeta.get("labels") or {}),
                            "finalizers": [JOB_TRACKING],
                            "ownerReferences": [{
                                "apiVersion": "batch/v1", "kind": "Job",
                                "name": m["name"], "uid": m["uid"], "controller": True,
                                "blockOwnerDeletion": True}]},
               "spec": spec}
        if tmeta.get("annotations"):
            pod["metadata"]["annotations"] = dict(tmeta["annotations"])
        ctx = Ctx(manager="kube-controller-manager")
        return self.api.create(self.mgr.rt_pod, m["namespace"], pod, ctx)


def _epoch(ts):
    try:
        return calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ"))
    except (TypeError, ValueError):
        return time.time()


class GarbageCollector(Reconciler):
    def __init__(self, mgr):
        super().__init__(mgr)
        self.foreground = {}  # owner uid -> (group, plural, ns, name)

    def observe(self, ev):
        m = ev.obj.get("metadata") or {}
        uid = m.get("uid")
        if ev.type == "DELETED":
            self.foreground.pop(uid, None)
            self.mark("delete-dependents", uid, ev.namespace)
            for owner_uid in {r.get("uid") for r in m.get("ownerReferences") or []}:
                if owner_uid in self.foreground:
                    self.mark("foreground", owner_uid, "")
        elif m.get("deletionTimestamp") and "foregroundDeletion" in (m.get("finalizers") or []):
            if uid not in self.foreground:
                self.foreground[uid] = (ev.group, ev.plural, ev.namespace, ev.name)
                self.mark("delete-dependents", uid, ev.namespace)
            self.mark("foreground", uid, "")

    def _dependents(self, uid):
        out = []
        for group, plural in self.store.kinds():
            for o in self.store.list(group, plural):
                if any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or []):
                    out.append((group, plural, o))
        return out

    def _rt(self, group, plural):
        for t in self.sim.registry.all():
            if (t.group, t.plural) == (group, plural):
                return t
        return None

    def reconcile(self, what, uid, ns):
        from .api import ApiError
        if what == "delete-dependents":
            for group, plural, o in self._dependents(uid):
                rt = self._rt(group, plural)
                if rt is None or o["metadata"].get("deletionTimestamp"):
                    continue
                m = o["metadata"]
                # dependents of an owner deleted in foreground go in foreground too, so the
                # owner stays until the whole chain (ReplicaSet, then its Pods) is gone
                policy = "Foreground" if uid in self.foreground else "Background"
                try:
                    self.api.delete(rt, m.get("namespace", ""), m["name"], self.mgr.ctx,
                                    {"propagationPolicy": policy})
                except ApiError as e:
                    if e.code != 404:
                        raise
        elif what == "foreground" and uid in self.foreground:
            if self._dependents(uid):
                return
            group, plural, ons, name = self.foreground.pop(uid)
            rt = self._rt(group, plural)

            def drop(o):
                o["metadata"]["finalizers"] = [f for f in o["metadata"].get("finalizers", [])
                                               if f != "foregroundDeletion"]
                if not o["metadata"]["finalizers"]:
                    del o["metadata"]["finalizers"]
            if rt is not None:
                self.mgr.mutate(rt, ons, name, drop, uid)


class DisruptionController(Reconciler):
    """PodDisruptionBudget status, as the disruption controller keeps it: expectedPods (the
    selected Pods that are not finished), currentHealthy (the Ready ones), desiredHealthy
    (from minAvailable or maxUnavailable, integers or percentages of expectedPods),
    disruptionsAllowed and the DisruptionAllowed condition. Helm 4's kstatus waits until a
    budget is met. Evictions are not simulated (no `pods/eviction` subresource)."""

    def observe(self, ev):
        if (ev.group, ev.plural) == ("policy", "poddisruptionbudgets"):
            if ev.type != "DELETED":
                self.mark(ev.namespace, ev.name)
        elif (ev.group, ev.plural) == ("", "pods"):
            for pdb in self.store.list("policy", "poddisruptionbudgets", ev.namespace):
                self.mark(ev.namespace, pdb["metadata"]["name"])

    def resync(self):
        for pdb in self.store.list("policy", "poddisruptionbudgets"):
            self.mark(pdb["metadata"]["namespace"], pdb["metadata"]["name"])

    def reconcile(self, ns, name):
        from .selectors import LabelSelector, SelectorError
        with self.store.lock:
            pdb = self.store.get("policy", "poddisruptionbudgets", ns, name)
            if pdb is None:
                return
            spec, meta = pdb.get("spec") or {}, pdb["metadata"]
            try:
                sel = LabelSelector.from_spec(spec.get("selector") or {})
            except SelectorError:
                return
            pods = [p for p in self.store.list("", "pods", ns)
                    if sel.matches(p["metadata"].get("labels")) and is_active(p)]
            expected = len(pods)
            healthy = sum(1 for p in pods if is_ready(p))

            def amount(v, round_up):
                if isinstance(v, str) and v.endswith("%"):
                    exact = expected * int(v[:-1] or 0) / 100
                    return int(-(-exact // 1)) if round_up else int(exact)
                return int(v)
            if spec.get("minAvailable") is not None:
                desired = amount(spec["minAvailable"], True)
            elif spec.get("maxUnavailable") is not None:
                desired = max(0, expected - amount(spec["maxUnavailable"], True))
            else:
                desired = expected
            allowed = max(0, healthy - desired)
            old = pdb.get("status") or {}
            prev = next((c for c in old.get("conditions") or []
                         if c.get("type") == "DisruptionAllowed"), {})
            st = "True" if allowed > 0 else "False"
            cond = {"type": "DisruptionAllowed", "status": st,
                    "reason": "SufficientPods" if allowed > 0 else "InsufficientPods",
                    "message": "", "observedGeneration": meta.get("generation", 1),
                    "lastTransitionTime": prev.get("lastTransitionTime", now_rfc3339())
                    if prev.get("status") == st else now_rfc3339()}
            status = {"observedGeneration": meta.get("generation", 1),
                      "disruptionsAllowed": allowed, "currentHealthy": healthy,
                      "desiredHealthy": desired, "expectedPods": expected,
                      "conditions": [cond]}
            if status != old:
                def set_status(o):
                    o["status"] = status
                self.mgr.mutate(self.mgr.rt_pdb, ns, name, set_status, meta["uid"])


class HpaController(Reconciler):
    def observe(self, ev):
        if not self.sim.hpa_controller:
            return
        if (ev.group, ev.plural) == ("autoscaling", "horizontalpodautoscalers") and \
                ev.type != "DELETED":
            self.mark(ev.namespace, ev.name)
        elif (ev.group, ev.plural) == ("apps", "deployments") and ev.type != "DELETED":
            for h in self.store.list("autoscaling", "horizontalpodautoscalers", ev.namespace):
                ref = (h.get("spec") or {}).get("scaleTargetRef") or {}
                if ref.get("kind") == "Deployment" and ref.get("name") == ev.name:
                    self.mark(ev.namespace, h["metadata"]["name"])

    def reconcile(self, ns, name):
        with self.store.lock:
            h = self.store.get("autoscaling", "horizontalpodautoscalers", ns, name)
            if h is None:
                return
            spec = h.get("spec") or {}
            ref = spec.get("scaleTargetRef") or {}
            d = self.store.get("apps", "deployments", ns, ref.get("name", "")) \
                if ref.get("kind") == "Deployment" else None
            lo, hi = spec.get("minReplicas", 1), spec.get("maxReplicas", 1)
            behavior = spec.get("behavior") or {}
            up_off = (behavior.get("scaleUp") or {}).get("selectPolicy") == "Disabled"
            down_off = (behavior.get("scaleDown") or {}).get("selectPolicy") == "Disabled"
            conds = []
            if d is None:
                current = desired = 0
                conds.append(("AbleToScale", "False", "FailedGetScale"))
            else:
                current = (d.get("spec") or {}).get("replicas", 1)
                desired = current
                if current == 0 and lo != 0:
                    conds.append(("ScalingActive", "False", "ScalingDisabled"))
                else:
                    if current < lo and not up_off:
                        desired = lo
                    elif current > hi and not down_off:
                        desired = hi
                    conds.append(("ScalingActive", "True", "ValidMetricFound"))
                    if desired != current:
                        self.api._set_replicas(self.mgr.rt_deploy, ns, ref["name"], desired,
                                               None, Ctx(manager="horizontal-pod-autoscaler"))
            status = {"currentReplicas": current, "desiredReplicas": desired,
                      "conditions": [{"type": t, "status": s, "reason": r}
                                     for t, s, r in conds]}
            if status != h.get("status"):
                def set_status(o):
                    o["status"] = status
                self.mgr.mutate(self.mgr.rt_hpa, ns, name, set_status, h["metadata"]["uid"])
