"""Pod Security admission, as the API server's built-in PodSecurity plugin does it.

A namespace labelled `pod-security.kubernetes.io/enforce: baseline|restricted` refuses the
creation of a Pod that violates that level (403 Forbidden, the real message shape); for a
workload (Deployment, Job, ...) whose Pod template violates it the real server only adds a
Warning header. The checks are the Pod Security Standards' (v1.32, `latest`) that matter
for what chartreuse and its tests create.
"""

LABEL = "pod-security.kubernetes.io/enforce"
LEVELS = ("privileged", "baseline", "restricted")
WORKLOADS = {("apps", "deployments"), ("apps", "replicasets"), ("apps", "statefulsets"),
             ("apps", "daemonsets"), ("batch", "jobs"), ("batch", "cronjobs"),
             ("", "replicationcontrollers")}
# baseline: capabilities a container may add
BASELINE_CAPS = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                 "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret"}
VOLUME_META = {"name"}


def _containers(spec):
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            yield c


def _names(cs):
    q = ", ".join(f'"{c.get("name", "")}"' for c in cs)
    return ("container " if len(cs) == 1 else "containers ") + q


def _sc(c):
    return c.get("securityContext") or {}


def baseline(spec):
    """The baseline violations of a Pod spec, as the real messages' parts."""
    out = []
    cs = list(_containers(spec))
    host = [f for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f)]
    if host:
        out.append("host namespaces (" + ", ".join(f"{f}=true" for f in host) + ")")
    priv = [c for c in cs if _sc(c).get("privileged")]
    if priv:
        out.append(f"privileged ({_names(priv)} must not set securityContext.privileged=true)")
    caps = [c for c in cs
            if set((_sc(c).get("capabilities") or {}).get("add") or []) - BASELINE_CAPS]
    if caps:
        bad = sorted({a for c in caps for a in (_sc(c).get("capabilities") or {}).get("add")
                      if a not in BASELINE_CAPS})
        out.append(f"non-default capabilities ({_names(caps)} must not include "
                   + ", ".join(f'"{a}"' for a in bad) + " in securityContext.capabilities.add)")
    hp = [v.get("name", "") for v in spec.get("volumes") or [] if "hostPath" in v]
    if hp:
        out.append("hostPath volumes (" + ("volume " if len(hp) == 1 else "volumes ")
                   + ", ".join(f'"{n}"' for n in hp) + ")")
    ports = [c for c in cs for p in c.get("ports") or [] if p.get("hostPort")]
    if ports:
        out.append(f"hostPort ({_names(ports)} uses hostPort)")
    pod_type = ((spec.get("securityContext") or {}).get("seccompProfile") or {}).get("type")
    unconf = [c for c in cs if (_sc(c).get("seccompProfile") or {}).get("type") == "Unconfined"]
    if pod_type == "Unconfined":
        out.append('seccompProfile (pod must not set securityContext.seccompProfile.type to '
                   '"Unconfined")')
    elif unconf:
        out.append(f'seccompProfile ({_names(unconf)} must not set '
                   'securityContext.seccompProfile.type to "Unconfined")')
    return out


def restricted(spec):
    """The restricted violations of a Pod spec (baseline's included)."""
    out = baseline(spec)
    cs = list(_containers(spec))
    psc = spec.get("securityContext") or {}
    vols = [v.get("name", "") for v in spec.get("volumes") or []
            if not (set(v) - VOLUME_META) <= RESTRICTED_VOLUMES and "hostPath" not in v]
    if vols:
        kinds = sorted({k for v in spec.get("volumes") or [] if v.get("name") in vols
                        for k in v if k not in VOLUME_META})
        out.append(f"restricted volume types ({'volume' if len(vols) == 1 else 'volumes'} "
                   + ", ".join(f'"{n}"' for n in vols) + " use" + ("s" if len(vols) == 1 else "")
                   + " restricted volume type" + ("s " if len(kinds) > 1 else " ")
                   + ", ".join(f'"{k}"' for k in kinds) + ")")
    ape = [c for c in cs if _sc(c).get("allowPrivilegeEscalation") is not False]
    if ape:
        out.append(f"allowPrivilegeEscalation != false ({_names(ape)} must set "
                   "securityContext.allowPrivilegeEscalation=false)")
    drop = [c for c in cs if "ALL" not in ((_sc(c).get("capabilities") or {}).get("drop") or [])]
    add = [c for c in cs
           if set((_sc(c).get("capabilities") or {}).get("add") or []) - {"NET_BIND_SERVICE"}]
    if drop or add:
        parts = []
        if drop:
            parts.append(f'{_names(drop)} must set securityContext.capabilities.drop=["ALL"]')
        if add:
            bad = sorted({a for c in add for a in (_sc(c).get("capabilities") or {}).get("add")
                          if a != "NET_BIND_SERVICE"})
            parts.append(f"{_names(add)} must not include " + ", ".join(f'"{a}"' for a in bad)
                         + " in securityContext.capabilities.add")
        out.append("unrestricted capabilities (" + "; ".join(parts) + ")")
    # runAsNonRoot: true at pod level (no container false) or on every container
    false_c = [c for c in cs if _sc(c).get("runAsNonRoot") is False]
    unset_c = [c for c in cs if _sc(c).get("runAsNonRoot") is None]
    pod_nr = psc.get("runAsNonRoot")
    if pod_nr is False or false_c or (pod_nr is not True and unset_c):
        if pod_nr is False:
            msg = "pod must not set securityContext.runAsNonRoot=false"
        elif false_c:
            msg = f"{_names(false_c)} must not set securityContext.runAsNonRoot=false"
        else:
            msg = (f"pod or {_names(unset_c)} must set securityContext.runAsNonRoot=true")
        out.append(f"runAsNonRoot != true ({msg})")
    root_c = [c for c in cs if _sc(c).get("runAsUser") == 0]
    if psc.get("runAsUser") == 0 or root_c:
        who = "pod" if psc.get("runAsUser") == 0 else _names(root_c)
        out.append(f"runAsUser=0 ({who} must not set runAsUser=0)")
    ok = ("RuntimeDefault", "Localhost")
    pod_ok = (psc.get("seccompProfile") or {}).get("type") in ok
    bad = [c for c in cs if (_sc(c).get("seccompProfile") or {}).get("type") not in ok
           and not (pod_ok and not (_sc(c).get("seccompProfile") or {}).get("type"))]
    if bad and not any(o.startswith("seccompProfile") for o in out):
        msg = (f"pod or {_names(bad)} must set securityContext.seccompProfile.type to "
               '"RuntimeDefault" or "Localhost"')
        out.append(f"seccompProfile ({msg})")
    return out


CHECKS = {"baseline": baseline, "restricted": restricted}


def violations(level, spec):
    check = CHECKS.get(level)
    return check(spec or {}) if check else []


def _pod_spec(group, plural, obj):
    spec = obj.get("spec") or {}
    if (group, plural) == ("", "pods"):
        return spec
    if (group, plural) == ("batch", "cronjobs"):
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    return ((spec.get("template") or {}).get("spec")) or {}


def level_of(store, ns):
    nsobj = store.get("", "namespaces", "", ns) if ns else None
    level = ((nsobj or {}).get("metadata") or {}).get("labels", {}).get(LABEL, "privileged")
    return level if level in LEVELS else "restricted"  # an unknown level: the strictest


def admit(store, rt, ns, obj, ctx):
    """Raises a 403 ApiError for a violating Pod; adds a warning for a workload."""
    from .api import ApiError
    key = (rt.group, rt.plural)
    if key != ("", "pods") and key not in WORKLOADS:
        return
    level = level_of(store, ns)
    found = violations(level, _pod_spec(rt.group, rt.plural, obj))
    if not found:
        return
    name = (obj.get("metadata") or {}).get("name") or ""
    what = f'violates PodSecurity "{level}:latest": ' + ", ".join(found)
    if key == ("", "pods"):
        raise ApiError(403, "Forbidden", f'pods "{name}" is forbidden: {what}',
                       {"name": name, "kind": "pods"})
    ctx.warnings.append(f"would {what}")
