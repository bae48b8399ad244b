"""What resources the simulated API server serves, and how it advertises them.

Real clients never hard-code paths: kubectl and Helm (through client-go) resolve `deploy`,
`eds` or `Deployment` to a group/version/resource through discovery, and decide how to
validate through OpenAPI. So the simulator keeps one `Registry` of `ResourceType`s and derives
everything from it: the legacy discovery documents (`/api`, `/api/v1`, `/apis`,
`/apis/<group>/<version>`), aggregated discovery (`apidiscovery.k8s.io/v2`, what client-go
1.30+ asks for first), the OpenAPI v3 index and per-group-version documents, and URL
routing. Creating a CustomResourceDefinition registers its resource, exactly like a real
cluster (the ExpectedDeploymentScale CRD is installed from deploy/ at start by default).

The OpenAPI documents are deliberately thin: every kind gets its paths with operations
carrying `x-kubernetes-group-version-kind`, and `patch` operations declare the
`fieldValidation` query parameter. That is what makes kubectl, Helm 3.17 and Helm 4.1 leave
validation to the server instead of downloading schemas (SPEC.md §3); the schemas
themselves are stubs that preserve unknown fields. Without these documents
(`K8sSim(openapi=False)`) Helm refuses to install ("failed to download openapi") unless run
with `--disable-openapi-validation`, as against a real server that serves none.
"""
import copy
import hashlib
import threading
from dataclasses import dataclass, field

STD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUB_VERBS = ("get", "patch", "update")
# Subresources that answer reads only (as a real server lists them): pods/log.
READ_ONLY_SUBRESOURCES = {"log"}


def sub_verbs(sub):
    """The verbs discovery lists for a subresource."""
    return ("get",) if sub in READ_ONLY_SUBRESOURCES else SUB_VERBS
K8S_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-k8s-sim",
               "gitCommit": "0000000000000000000000000000000000000000",
               "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z",
               "goVersion": "go1.23.4", "compiler": "gc", "platform": "linux/amd64"}


@dataclass
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    singular: str = ""
    short_names: tuple = ()
    categories: tuple = ()
    verbs: tuple = STD_VERBS
    # subresource name -> (group, version, kind) of what it answers with
    subresources: dict = field(default_factory=dict)
    custom: bool = False          # served from a CustomResourceDefinition
    crd_name: str = ""
    printer_columns: list = None  # CRD additionalPrinterColumns
    schema: dict = None           # CRD openAPIV3Schema, for defaulting

    def __post_init__(self):
        if not self.singular:
            self.singular = self.kind.lower()

    @property
    def api_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self):
        return self.api_version

    @property
    def qualified(self):
        """`deployments.apps`, or `pods` for the core group: how errors name a resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def has_status(self):
        return "status" in self.subresources

    @property
    def has_scale(self):
        return "scale" in self.subresources

    def base_path(self, namespace=None):
        root = f"/apis/{self.group}/{self.version}" if self.group else "/api/v1"
        if self.namespaced and namespace:
            return f"{root}/namespaces/{namespace}/{self.plural}"
        return f"{root}/{self.plural}"


def _rt(group, version, plural, kind, *, short=(), namespaced=True, sub=(), cats=("all",),
        scale=False, verbs=STD_VERBS):
    subs = {}
    if scale:
        subs["scale"] = ("autoscaling", "v1", "Scale")
    for s in sub:
        subs[s] = (group, version, kind)
    return ResourceType(group, version, plural, kind, namespaced=namespaced,
                        short_names=tuple(short), categories=tuple(cats), subresources=subs,
                        verbs=verbs)


def builtin_types():
    """The built-in kinds: what a Helm chart, chartreuse and its migration Job touch."""
    no_all = ()
    return [
        _rt("", "v1", "pods", "Pod", short=["po"], sub=["status", "log"]),
        _rt("", "v1", "secrets", "Secret", cats=no_all),
        _rt("", "v1", "configmaps", "ConfigMap", short=["cm"], cats=no_all),
        _rt("", "v1", "services", "Service", short=["svc"], sub=["status"]),
        _rt("", "v1", "serviceaccounts", "ServiceAccount", short=["sa"], cats=no_all),
        _rt("", "v1", "events", "Event", short=["ev"], cats=no_all),
        _rt("", "v1", "endpoints", "Endpoints", short=["ep"], cats=no_all),
        _rt("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", short=["pvc"],
            sub=["status"], cats=no_all),
        _rt("", "v1", "namespaces", "Namespace", short=["ns"], namespaced=False,
            sub=["status"], cats=no_all),
        _rt("", "v1", "nodes", "Node", short=["no"], namespaced=False, sub=["status"],
            cats=no_all),
        _rt("apps", "v1", "deployments", "Deployment", short=["deploy"], sub=["status"],
            scale=True),
        _rt("apps", "v1", "replicasets", "ReplicaSet", short=["rs"], sub=["status"],
            scale=True),
        _rt("apps", "v1", "statefulsets", "StatefulSet", short=["sts"], sub=["status"],
            scale=True),
        _rt("apps", "v1", "daemonsets", "DaemonSet", short=["ds"], sub=["status"]),
        _rt("apps", "v1", "controllerrevisions", "ControllerRevision", cats=no_all),
        _rt("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler",
            short=["hpa"], sub=["status"]),
        _rt("batch", "v1", "jobs", "Job", sub=["status"]),
        _rt("batch", "v1", "cronjobs", "CronJob", short=["cj"], sub=["status"]),
        _rt("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", short=["pdb"],
            sub=["status"], cats=no_all),
        _rt("networking.k8s.io", "v1", "ingresses", "Ingress", short=["ing"], sub=["status"],
            cats=no_all),
        _rt("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", short=["netpol"],
            cats=no_all),
        _rt("rbac.authorization.k8s.io", "v1", "roles", "Role", cats=no_all),
        _rt("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", cats=no_all),
        _rt("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole",
            namespaced=False, cats=no_all),
        _rt("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding",
            namespaced=False, cats=no_all),
        _rt("apiextensions.k8s.io", "v1", "customresourcedefinitions",
            "CustomResourceDefinition", short=["crd", "crds"], namespaced=False,
            sub=["status"], cats=("api-extensions",)),
    ]


def types_from_crd(crd):
    """The ResourceTypes a CustomResourceDefinition object serves (one per served version)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out = []
    for v in spec.get("versions") or []:
        if not v.get("served", True):
            continue
        subs = {}
        sr = v.get("subresources") or {}
        if "status" in sr:
            subs["status"] = (spec["group"], v["name"], names["kind"])
        if "scale" in sr:
            subs["scale"] = ("autoscaling", "v1", "Scale")
        out.append(ResourceType(
            spec["group"], v["name"], names["plural"], names["kind"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            singular=names.get("singular") or names["kind"].lower(),
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()), subresources=subs,
            custom=True, crd_name=crd["metadata"]["name"],
            printer_columns=v.get("additionalPrinterColumns"),
            schema=(v.get("schema") or {}).get("openAPIV3Schema")))
    return out


class Registry:
    """The served resource types, looked up by URL parts or by any name kubectl accepts."""

    def __init__(self):
        self._lock = threading.RLock()
        self._types = []
        for rt in builtin_types():
            self.add(rt)

    def add(self, rt):
        with self._lock:
            self._types = [t for t in self._types
                           if (t.group, t.version, t.plural) != (rt.group, rt.version, rt.plural)]
            self._types.append(rt)

    def remove_crd(self, crd_name):
        with self._lock:
            gone = [t for t in self._types if t.custom and t.crd_name == crd_name]
            self._types = [t for t in self._types if t not in gone]
            return gone

    def all(self):
        with self._lock:
            return list(self._types)

    def by_path(self, group, version, plural):
        with self._lock:
            for t in self._types:
                if (t.group, t.version, t.plural) == (group, version, plural):
                    return t
        return None

    def by_kind(self, api_version, kind):
        group, _, version = api_version.rpartition("/")
        with self._lock:
            for t in self._types:
                if (t.group, t.version, t.kind) == (group, version, kind):
                    return t
        return None

    def resolve(self, name):
        """A type from `Deployment`, `deployments`, `deploy`, `deployments.apps`,
        `apps/v1/deployments` or `apps/v1/Deployment` (case-insensitive)."""
        with self._lock:
            types = list(self._types)
        if "/" in name:
            gv, _, res = name.rpartition("/")
            group, _, version = gv.rpartition("/")
            for t in types:
                if (t.group, t.version) == (group, version) and \
                        res.lower() in (t.plural, t.kind.lower()):
                    return t
            raise KeyError(name)
        low = name.lower()
        base, _, group = low.partition(".")
        for t in types:
            if group and t.group != group:
                continue
            if base in (t.plural, t.singular, t.kind.lower()) or base in t.short_names:
                return t
        raise KeyError(name)

    def groups(self):
        """{group: [versions]} in registration order, core group ("") included."""
        out = {}
        with self._lock:
            for t in self._types:
                vs = out.setdefault(t.group, [])
                if t.version not in vs:
                    vs.append(t.version)
        return out

    # --- legacy discovery -------------------------------------------------------------

    def api_versions(self, server_address):
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                "serverAddress": server_address}]}

    def api_group_list(self):
        groups = []
        for g, versions in self.groups().items():
            if g:
                groups.append(self.api_group(g, versions))
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def api_group(self, group, versions=None):
        versions = versions or self.groups().get(group)
        if not versions:
            return None
        vs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": vs,
                "preferredVersion": vs[0]}

    def resource_list(self, group, version):
        types = [t for t in self.all() if (t.group, t.version) == (group, version)]
        if not types:
            return None
        resources = []
        for t in types:
            r = {"name": t.plural, "singularName": t.singular, "namespaced": t.namespaced,
                 "kind": t.kind, "verbs": list(t.verbs),
                 "storageVersionHash": _hash(t.api_version + t.kind)}
            if t.short_names:
                r["shortNames"] = list(t.short_names)
            if t.categories:
                r["categories"] = list(t.categories)
            resources.append(r)
            for sub, (sg, sv, sk) in t.subresources.items():
                s = {"name": f"{t.plural}/{sub}", "singularName": "",
                     "namespaced": t.namespaced, "kind": sk, "verbs": list(sub_verbs(sub))}
                if (sg, sv) != (t.group, t.version):
                    s["group"], s["version"] = sg, sv
                resources.append(s)
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version,
                "resources": resources}

    # --- aggregated discovery (apidiscovery.k8s.io/v2) ---------------------------------

    def aggregated(self, core, api_version="apidiscovery.k8s.io/v2"):
        items = []
        for g, versions in self.groups().items():
            if bool(g) == core:
                continue
            vdocs = []
            for v in versions:
                res = []
                for t in self.all():
                    if (t.group, t.version) != (g, v):
                        continue
                    r = {"resource": t.plural,
                         "responseKind": {"group": t.group, "version": t.version,
                                          "kind": t.kind},
                         "scope": "Namespaced" if t.namespaced else "Cluster",
                         "singularResource": t.singular, "verbs": list(t.verbs)}
                    if t.short_names:
                        r["shortNames"] = list(t.short_names)
                    if t.categories:
                        r["categories"] = list(t.categories)
                    subs = [{"subresource": s,
                             "responseKind": {"group": sg, "version": sv, "kind": sk},
                             "verbs": list(sub_verbs(s))}
                            for s, (sg, sv, sk) in t.subresources.items()]
                    if subs:
                        r["subresources"] = subs
                    res.append(r)
                vdocs.append({"version": v, "resources": res, "freshness": "Current"})
            items.append({"metadata": {"name": g, "creationTimestamp": None},
                          "versions": vdocs})
        return {"kind": "APIGroupDiscoveryList", "apiVersion": api_version,
                "metadata": {}, "items": items}

    # --- OpenAPI v3 ----------------------------------------------------------------------

    def openapi_index(self):
        paths = {}
        for g, versions in self.groups().items():
            for v in versions:
                rel = f"apis/{g}/{v}" if g else "api/v1"
                doc = self.openapi_doc(rel)
                h = _hash(repr(sorted(doc["paths"])))
                paths[rel] = {"serverRelativeURL": f"/openapi/v3/{rel}?hash={h}"}
        return {"paths": paths}

    def openapi_doc(self, rel):
        """The OpenAPI v3 document for `api/v1` or `apis/<group>/<version>`, or None."""
        parts = rel.strip("/").split("/")
        if parts == ["api", "v1"]:
            group, version = "", "v1"
        elif len(parts) == 3 and parts[0] == "apis":
            group, version = parts[1], parts[2]
        else:
            return None
        types = [t for t in self.all() if (t.group, t.version) == (group, version)]
        if not types:
            return None
        paths, schemas = {}, {}
        for t in types:
            gvk = {"group": t.group, "version": t.version, "kind": t.kind}
            sname = _schema_name(t)
            schemas[sname] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                              "x-kubernetes-group-version-kind": [gvk]}
            ref = {"$ref": f"#/components/schemas/{sname}"}
            ns_param = [{"name": "namespace", "in": "path", "required": True,
                         "schema": {"type": "string"}}] if t.namespaced else []
            name_param = [{"name": "name", "in": "path", "required": True,
                           "schema": {"type": "string"}}]
            root = t.base_path("{namespace}")

            def op(verb, action, extra=(), params=(), kind_gvk=gvk):
                return {"operationId": f"{verb}{t.kind}", "x-kubernetes-action": action,
                        "x-kubernetes-group-version-kind": kind_gvk,
                        "parameters": list(params) + list(extra),
                        "responses": {"200": {"description": "OK",
                                              "content": {"application/json":
                                                          {"schema": ref}}}}}
            write_params = [_qp("dryRun"), _qp("fieldManager"), _qp("fieldValidation")]
            paths[root] = {
                "get": op("list", "list", params=ns_param),
                "post": op("create", "post", write_params, ns_param),
                "delete": op("deletecollection", "deletecollection", params=ns_param)}
            item = root + "/{name}"
            paths[item] = {
                "get": op("read", "get", params=ns_param + name_param),
                "put": op("replace", "put", write_params, ns_param + name_param),
                "patch": op("patch", "patch", write_params + [_qp("force", "boolean")],
                            ns_param + name_param),
                "delete": op("delete", "delete", params=ns_param + name_param)}
            for sub, (sg, sv, sk) in t.subresources.items():
                sgvk = {"group": sg, "version": sv, "kind": sk}
                if sub in READ_ONLY_SUBRESOURCES:  # pods/log: a text/plain GET
                    get = op("read", "get", params=ns_param + name_param, kind_gvk=sgvk)
                    get["parameters"] += [_qp(n, typ) for n, typ in LOG_PARAMS]
                    get["responses"]["200"]["content"] = {
                        "text/plain": {"schema": {"type": "string"}}}
                    paths[f"{item}/{sub}"] = {"get": get}
                    continue
                paths[f"{item}/{sub}"] = {
                    "get": op("read", "get", params=ns_param + name_param, kind_gvk=sgvk),
                    "put": op("replace", "put", write_params, ns_param + name_param,
                              kind_gvk=sgvk),
                    "patch": op("patch", "patch", write_params + [_qp("force", "boolean")],
                                ns_param + name_param, kind_gvk=sgvk)}
        return {"openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": K8S_VERSION["gitVersion"]},
                "paths": paths, "components": {"schemas": schemas}}


# The query parameters of pods/log (PodLogOptions).
LOG_PARAMS = (("container", "string"), ("follow", "boolean"),
              ("insecureSkipTLSVerifyBackend", "boolean"), ("limitBytes", "integer"),
              ("previous", "boolean"), ("sinceSeconds", "integer"), ("sinceTime", "string"),
              ("stream", "string"), ("tailLines", "integer"), ("timestamps", "boolean"))


def _qp(name, typ="string"):
    return {"name": name, "in": "query", "schema": {"type": typ, "uniqueItems": True}}


def _schema_name(t):
    if t.custom:
        return ".".join(reversed(t.group.split("."))) + f".{t.version}.{t.kind}"
    group = t.group.split(".")[0] if t.group else "core"
    return f"io.k8s.api.{group}.{t.version}.{t.kind}"


def _hash(text):
    return hashlib.sha256(text.encode()).hexdigest()[:16].upper()


def apply_schema_defaults(obj, schema):
    """Fill `default`s from a structural OpenAPI v3 schema, as the API server does for
    custom resources (e.g. ExpectedDeploymentScale `spec.priority` defaults to 0)."""
    if not isinstance(schema, dict):
        return obj
    if isinstance(obj, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key not in obj and isinstance(sub, dict) and "default" in sub:
                obj[key] = copy.deepcopy(sub["default"])
            if key in obj:
                apply_schema_defaults(obj[key], sub)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for item in obj:
            apply_schema_defaults(item, schema["items"])
    return obj
