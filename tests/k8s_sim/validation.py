"""Unknown fields, and what the `fieldValidation` parameter makes of them.

A real API server decodes a body into its Go type (built-in kinds) or prunes it against the
CRD's structural schema (custom resources), so a field the type does not declare never
reaches storage. What the client hears depends on `fieldValidation`: `Ignore` (dropped
silently), `Warn`, the default (dropped, one `Warning: 299` header per field), `Strict`
(400, `strict decoding error: unknown field "spec.x"`). Server-side apply refuses unknown
fields whatever the parameter says. Helm 4 sends `fieldValidation=Strict` with every apply;
Helm 3 and kubectl leave validation to the server because the OpenAPI documents declare the
parameter (see discovery.py).

How far the simulator knows the types: custom resources are checked against their whole
schema (`properties`, `additionalProperties`, `items`, `x-kubernetes-preserve-unknown-fields`;
an object schema with none of them keeps no field, as on a real server). Built-in kinds are
checked at the top level (a misindented `replicas:` beside `spec:`) and in `metadata`,
because the simulator has no schema for their specs: a typo inside a Deployment's spec is
kept, where a real server would drop or refuse it.
"""

OBJECT_META = {"name", "generateName", "namespace", "selfLink", "uid", "resourceVersion",
               "generation", "creationTimestamp", "deletionTimestamp",
               "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences",
               "finalizers", "managedFields"}

_SPEC_STATUS = frozenset({"spec", "status"})
# (group, plural) -> top-level fields besides apiVersion, kind and metadata
TOP_LEVEL = {
    ("", "pods"): _SPEC_STATUS,
    ("", "secrets"): {"data", "stringData", "type", "immutable"},
    ("", "configmaps"): {"data", "binaryData", "immutable"},
    ("", "services"): _SPEC_STATUS,
    ("", "serviceaccounts"): {"secrets", "imagePullSecrets", "automountServiceAccountToken"},
    ("", "events"): {"involvedObject", "reason", "message", "source", "firstTimestamp",
                     "lastTimestamp", "count", "type", "eventTime", "series", "action",
                     "related", "reportingComponent", "reportingInstance"},
    ("", "endpoints"): {"subsets"},
    ("", "persistentvolumeclaims"): _SPEC_STATUS,
    ("", "namespaces"): _SPEC_STATUS,
    ("", "nodes"): _SPEC_STATUS,
    ("apps", "deployments"): _SPEC_STATUS,
    ("apps", "replicasets"): _SPEC_STATUS,
    ("apps", "statefulsets"): _SPEC_STATUS,
    ("apps", "daemonsets"): _SPEC_STATUS,
    ("apps", "controllerrevisions"): {"data", "revision"},
    ("autoscaling", "horizontalpodautoscalers"): _SPEC_STATUS,
    ("batch", "jobs"): _SPEC_STATUS,
    ("batch", "cronjobs"): _SPEC_STATUS,
    ("policy", "poddisruptionbudgets"): _SPEC_STATUS,
    ("networking.k8s.io", "ingresses"): _SPEC_STATUS,
    ("networking.k8s.io", "networkpolicies"): _SPEC_STATUS,
    ("rbac.authorization.k8s.io", "roles"): {"rules"},
    ("rbac.authorization.k8s.io", "clusterroles"): {"rules", "aggregationRule"},
    ("rbac.authorization.k8s.io", "rolebindings"): {"subjects", "roleRef"},
    ("rbac.authorization.k8s.io", "clusterrolebindings"): {"subjects", "roleRef"},
    ("apiextensions.k8s.io", "customresourcedefinitions"): _SPEC_STATUS,
}

VALUES = ("", "Ignore", "Warn", "Strict")


def unknown_fields(rt, obj):
    """[(container, key, path)] of the fields `obj` has that its type does not declare."""
    out = []
    if not isinstance(obj, dict):
        return out
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        out += [(meta, k, f"metadata.{k}") for k in meta if k not in OBJECT_META]
    if rt.custom:
        if rt.schema:
            _walk(obj, rt.schema, "", out, root=True)
        return out
    allowed = TOP_LEVEL.get((rt.group, rt.plural))
    if allowed is not None:
        out += [(obj, k, k) for k in obj
                if k not in allowed and k not in ("apiVersion", "kind", "metadata")]
    return out


def _walk(value, schema, path, out, root=False):
    if not isinstance(schema, dict) or schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for k, v in value.items():
            if root and k in ("apiVersion", "kind", "metadata"):
                continue
            sub = f"{path}.{k}" if path else k
            if k in props:
                _walk(v, props[k], sub, out)
            elif isinstance(extra, dict):
                _walk(v, extra, sub, out)
            elif extra is not True:
                out.append((value, k, sub))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _walk(item, schema["items"], f"{path}[{i}]", out)


def prune(found):
    for container, key, _ in found:
        container.pop(key, None)
