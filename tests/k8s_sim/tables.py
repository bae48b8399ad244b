"""Server-side printing: `meta.k8s.io/v1` Table answers for `Accept: ...;as=Table`.

Why: `kubectl get` (and `get -w`) ask the server to render the columns. Without Table
answers kubectl falls back to NAME/AGE only, and `kubectl get pods -w` could not show a Pod
going Running -> Terminating -> gone. The columns mirror the real printers for the kinds
the project cares about, and CRDs' `additionalPrinterColumns` (ExpectedDeploymentScale
shows Deployment, Expected Scale, Priority).
"""
import calendar
import time


def _age(ts, now=None):
    if not ts:
        return "<unknown>"
    try:
        t = calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return "<invalid>"
    s = max(0, int((now or time.time()) - t))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    return f"{h // 24}d"


def _path(obj, json_path):
    cur = obj
    for part in json_path.strip().lstrip(".").split("."):
        if not part:
            continue
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def pod_status(pod):
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    if meta.get("deletionTimestamp"):
        return "Terminating"
    reason = status.get("reason") or status.get("phase") or "Pending"
    for cs in status.get("containerStatuses") or []:
        st = cs.get("state") or {}
        if st.get("waiting", {}).get("reason"):
            reason = st["waiting"]["reason"]
        elif st.get("terminated", {}).get("reason"):
            reason = st["terminated"]["reason"]
    return reason


def _pod_cells(p):
    spec, status = p.get("spec") or {}, p.get("status") or {}
    total = len(spec.get("containers") or [])
    ready = sum(1 for c in status.get("containerStatuses") or [] if c.get("ready"))
    restarts = sum(c.get("restartCount", 0) for c in status.get("containerStatuses") or [])
    return [f"{ready}/{total}", pod_status(p), restarts], \
        [status.get("podIP", "<none>"), spec.get("nodeName", "<none>"), "<none>", "<none>"]


def _deploy_cells(d):
    spec, st = d.get("spec") or {}, d.get("status") or {}
    containers = (((spec.get("template") or {}).get("spec") or {}).get("containers") or [])
    sel = ",".join(f"{k}={v}" for k, v in
                   ((spec.get("selector") or {}).get("matchLabels") or {}).items())
    return [f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
            st.get("updatedReplicas", 0), st.get("availableReplicas", 0)], \
        [",".join(c.get("name", "") for c in containers),
         ",".join(c.get("image", "") for c in containers), sel]


def _rs_cells(r):
    spec, st = r.get("spec") or {}, r.get("status") or {}
    return [spec.get("replicas", 1), st.get("replicas", 0), st.get("readyReplicas", 0)], []


def _job_cells(j):
    spec, st = j.get("spec") or {}, j.get("status") or {}
    conds = {c.get("type"): c.get("status") for c in st.get("conditions") or []}
    # the order of the 1.31 printer
    state = "Complete" if conds.get("Complete") == "True" else \
        "Failed" if conds.get("Failed") == "True" else \
        "Terminating" if (j.get("metadata") or {}).get("deletionTimestamp") else \
        "Suspended" if conds.get("Suspended") == "True" else \
        "FailureTarget" if conds.get("FailureTarget") == "True" else \
        "SuccessCriteriaMet" if conds.get("SuccessCriteriaMet") == "True" else "Running"
    duration = ""
    if st.get("startTime"):
        end = _epoch(st["completionTime"]) if st.get("completionTime") else None
        duration = _age(st["startTime"], end)
    return [state, f"{st.get('succeeded', 0)}/{spec.get('completions', 1)}", duration], []


def _epoch(ts):
    try:
        return calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return None


def _hpa_cells(h):
    spec, st = h.get("spec") or {}, h.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    targets = []
    for m in spec.get("metrics") or []:
        t = ((m.get("resource") or {}).get("target") or {})
        if t.get("averageUtilization") is not None:
            targets.append(f"{m['resource'].get('name')}: <unknown>/"
                           f"{t['averageUtilization']}%")
    return [f"{ref.get('kind', '')}/{ref.get('name', '')}", ", ".join(targets) or "<none>",
            spec.get("minReplicas", 1), spec.get("maxReplicas"),
            st.get("currentReplicas", 0)], []


def _secret_cells(s):
    return [s.get("type", "Opaque"), len(s.get("data") or {})], []


def _cm_cells(c):
    return [len(c.get("data") or {}) + len(c.get("binaryData") or {})], []


def _svc_cells(s):
    spec = s.get("spec") or {}
    ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}"
                     for p in spec.get("ports") or [])
    return [spec.get("type", "ClusterIP"), spec.get("clusterIP", "<none>"), "<none>",
            ports or "<none>"], []


def _ns_cells(n):
    return [(n.get("status") or {}).get("phase", "Active")], []


def _col(name, typ="string", priority=0, fmt=""):
    return {"name": name, "type": typ, "format": fmt, "description": name,
            "priority": priority}


# (group, plural) -> (columns between Name and Age, wide columns, cell function)
PRINTERS = {
    ("", "pods"): ([_col("Ready"), _col("Status"), _col("Restarts", "string")],
                   [_col("IP", priority=1), _col("Node", priority=1),
                    _col("Nominated Node", priority=1), _col("Readiness Gates", priority=1)],
                   _pod_cells),
    ("apps", "deployments"): ([_col("Ready"), _col("Up-to-date", "integer"),
                               _col("Available", "integer")],
                              [_col("Containers", priority=1), _col("Images", priority=1),
                               _col("Selector", priority=1)], _deploy_cells),
    ("apps", "replicasets"): ([_col("Desired", "integer"), _col("Current", "integer"),
                               _col("Ready", "integer")], [], _rs_cells),
    ("batch", "jobs"): ([_col("Status"), _col("Completions"), _col("Duration")], [],
                        _job_cells),
    ("autoscaling", "horizontalpodautoscalers"): (
        [_col("Reference"), _col("Targets"), _col("MinPods", "integer"),
         _col("MaxPods", "integer"), _col("Replicas", "integer")], [], _hpa_cells),
    ("", "secrets"): ([_col("Type"), _col("Data", "integer")], [], _secret_cells),
    ("", "configmaps"): ([_col("Data", "integer")], [], _cm_cells),
    ("", "services"): ([_col("Type"), _col("Cluster-IP"), _col("External-IP"),
                        _col("Port(s)")], [], _svc_cells),
    ("", "namespaces"): ([_col("Status")], [], _ns_cells),
}


def _columns_and_cells(rt):
    """(column definitions, function object -> cells)."""
    name_col = _col("Name", fmt="name")
    age_col = _col("Age", "date")
    if rt.custom:
        pcs = rt.printer_columns
        if pcs is None:
            return [name_col, age_col], lambda o: [o["metadata"]["name"],
                                                   _age(o["metadata"].get("creationTimestamp"))]
        cols = [name_col] + [_col(c["name"], c.get("type", "string"), c.get("priority", 0))
                             for c in pcs]

        def cells(o):
            out = [o["metadata"]["name"]]
            for c in pcs:
                v = _path(o, c.get("jsonPath", ""))
                out.append(_age(v) if c.get("type") == "date" else v)
            return out
        return cols, cells
    printer = PRINTERS.get((rt.group, rt.plural))
    if not printer:
        return [name_col, age_col], lambda o: [o["metadata"]["name"],
                                               _age(o["metadata"].get("creationTimestamp"))]
    mid, wide, fn = printer

    def cells(o):
        m, w = fn(o)
        return [o["metadata"]["name"], *m, _age(o["metadata"].get("creationTimestamp")), *w]
    return [name_col, *mid, age_col, *wide], cells


def _row_object(obj, include):
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata", {})}


def table(rt, objs, resource_version="", include="Metadata", cont=None):
    cols, cells = _columns_and_cells(rt)
    rows = []
    for o in objs:
        row = {"cells": cells(o)}
        ro = _row_object(o, include)
        if ro is not None:
            if include == "Object" and "kind" not in ro:
                ro = dict(ro, apiVersion=rt.api_version, kind=rt.kind)
            row["object"] = ro
        rows.append(row)
    meta = {"resourceVersion": resource_version}
    if cont:
        meta["continue"] = cont
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
            "columnDefinitions": cols, "rows": rows}


def wants_table(accept):
    return "as=Table" in (accept or "")
