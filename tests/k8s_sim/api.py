"""API semantics, independent of HTTP: what get/list/create/update/patch/delete and the
`scale` and `status` subresources do to the store, and the errors they answer with.

Why it is its own layer: the HTTP handler, the Python test hooks (`sim.put`) and the
simulated controllers all write through it, so defaulting, resourceVersion preconditions,
generation, managedFields and graceful Pod deletion behave the same whoever writes.

Fidelity notes (what a real API server does and this one therefore does too):
- `status` is ignored on create/update of the main resource for kinds with a status
  subresource, and `.../status` writes change only `status`.
- `metadata.resourceVersion` in an update (or in a patch) is a precondition: 409 Conflict
  when stale. Without it an update is unconditional.
- `metadata.generation` starts at 1 and grows when anything but metadata/status changes
  (non-core kinds only, like the real server for Deployments, Jobs, custom resources...;
  for HPAs a real server does so only with the HPAGeneration feature gate, else an HPA's
  generation never moves: chartreuse does not rely on it).
- List items of built-in kinds carry no `kind`/`apiVersion` (custom resources do); watch
  event objects always do.
- Deleting a scheduled, running Pod is graceful: it gets `deletionTimestamp` and stays
  (Terminating) until the simulated kubelet removes it; objects with finalizers stay until
  the finalizers are removed.
- Strategic merge patch on a custom resource is 415, as on a real server.
- Fields the type does not declare are dropped with a warning, dropped silently or refused,
  per `fieldValidation`; server-side apply always refuses them (validation.py). `null` in a
  built-in object is the zero value and is not stored.
"""
import base64
import copy
import json
import random
import time
import uuid

import yaml

from . import patch as P
from . import podsecurity
from . import validation as V
from .discovery import apply_schema_defaults, types_from_crd
from .selectors import FieldSelector, LabelSelector, SelectorError, selector_string

SIM_ANNOTATION_PREFIX = "sim.chartreuse.test/"

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
APPLY_PATCH_CBOR = "application/apply-patch+cbor"


def now_rfc3339(t=None):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t if t is not None else time.time()))


def random_suffix(n=5):
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(random.choice(alphabet) for _ in range(n))


class ApiError(Exception):
    """An error answer: becomes a `Status` object with this code and reason."""

    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details, self.headers = details, headers or {}

    def status(self):
        st = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
              "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            st["details"] = self.details
        return st


def not_found(rt, name):
    return ApiError(404, "NotFound", f'{rt.qualified} "{name}" not found',
                    {"name": name, "group": rt.group, "kind": rt.plural})


def conflict(rt, name):
    return ApiError(409, "Conflict",
                    f'Operation cannot be fulfilled on {rt.qualified} "{name}": the object has '
                    f'been modified; please apply your changes to the latest version and try '
                    f'again', {"name": name, "group": rt.group, "kind": rt.plural})


def invalid(rt, name, field, detail, kind=None):
    kind = kind or rt.kind
    qk = f"{kind}.{rt.group}" if rt.group else kind
    return ApiError(422, "Invalid", f'{qk} "{name}" is invalid: {field}: {detail}',
                    {"name": name, "group": rt.group, "kind": kind,
                     "causes": [{"reason": "FieldValueInvalid", "message": detail,
                                 "field": field}]})


def bad_request(message):
    return ApiError(400, "BadRequest", message)


NO_RESOURCE = ApiError(404, "NotFound", "the server could not find the requested resource",
                       {})


class Ctx:
    """Who is writing and how (query parameters of the request)."""

    def __init__(self, user="system:admin", manager="k8s-sim", dry_run=False, force=False,
                 field_validation="", raw_status=False, manager_from_agent=False):
        self.user, self.manager, self.dry_run = user, manager, dry_run
        self.force, self.field_validation = force, field_validation
        self.raw_status = raw_status  # test hooks: keep the given status on create/update
        # the manager name was derived from the User-Agent (no fieldManager parameter):
        # fine for updates, refused for server-side apply
        self.manager_from_agent = manager_from_agent
        self.warnings = []  # answered as `Warning: 299` headers


INTERNAL = Ctx(manager="k8s-sim-controller")


def _meta(obj):
    return obj.setdefault("metadata", {})


def owner_uids(obj):
    return {r.get("uid") for r in (obj.get("metadata") or {}).get("ownerReferences") or []}


class Api:
    def __init__(self, store, registry, sim=None):
        self.store, self.registry, self.sim = store, registry, sim
        self._cluster_ips = 10

    # --- reading ------------------------------------------------------------------------

    def get(self, rt, ns, name):
        obj = self.store.get(rt.group, rt.plural, ns if rt.namespaced else "", name)
        if obj is None:
            raise not_found(rt, name)
        return copy.deepcopy(obj)

    def list(self, rt, ns=None, label_selector="", field_selector="", limit=0, cont=""):
        lsel, fsel = self.selectors(rt, label_selector, field_selector)
        with self.store.lock:
            rv = self.store.rv
            objs = [o for o in self.store.list(rt.group, rt.plural,
                                               ns if rt.namespaced else None)
                    if lsel.matches(o["metadata"].get("labels")) and fsel.matches(o)]
        start = None
        if cont:
            try:
                start = tuple(json.loads(base64.urlsafe_b64decode(cont.encode()))["start"])
            except Exception:
                raise bad_request(f"invalid continue token {cont!r}")
            objs = [o for o in objs
                    if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > start]
        meta = {"resourceVersion": str(rv)}
        if limit and len(objs) > limit:
            last = objs[limit - 1]["metadata"]
            token = {"rv": rv, "start": [last.get("namespace", ""), last["name"]]}
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(token).encode()).decode()
            meta["remainingItemCount"] = len(objs) - limit
            objs = objs[:limit]
        items = []
        for o in objs:
            o = copy.deepcopy(o)
            if not rt.custom:
                o.pop("kind", None)
                o.pop("apiVersion", None)
            items.append(o)
        return {"kind": rt.kind + "List", "apiVersion": rt.api_version, "metadata": meta,
                "items": items}

    def selectors(self, rt, label_selector, field_selector):
        try:
            return (LabelSelector.parse(label_selector),
                    FieldSelector.parse(field_selector, rt.group, rt.plural))
        except SelectorError as e:
            raise bad_request(str(e))

    # --- object preparation -------------------------------------------------------------

    def _check_type(self, rt, body, ns):
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        av, kind = body.get("apiVersion"), body.get("kind")
        if av and av != rt.api_version:
            # served versions of one CRD share storage: accept a sibling version
            sib = self.registry.by_kind(av, kind or rt.kind)
            if not (sib and sib.plural == rt.plural and sib.group == rt.group):
                raise bad_request(f"the API version in the data ({av}) does not match the "
                                  f"expected API version ({rt.api_version})")
        if kind and kind != rt.kind:
            raise bad_request(f"the kind in the data ({kind}) does not match the expected "
                              f"kind ({rt.kind})")
        meta = body.get("metadata") or {}
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if rt.namespaced and ns and meta.get("namespace") and meta["namespace"] != ns:
            raise bad_request("the namespace of the provided object does not match the "
                              "namespace sent on the request")

    def _finish(self, rt, ns, obj, old, ctx):
        """Fill what the server owns and the kind's defaults; validate."""
        if not rt.custom:
            # a typed server decodes `null` as the zero value and does not write it back
            # (Helm renders `metadata:` with nothing under it as null, for instance)
            for k in [k for k in obj if k != "status"]:
                obj[k] = _drop_nulls(obj[k])
                if obj[k] is None:
                    del obj[k]
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        meta = _meta(obj)
        if rt.namespaced:
            meta["namespace"] = ns or meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        name = meta.get("name")
        if not name:
            raise invalid(rt, "", "metadata.name",
                          "Required value: name or generateName is required")
        if old is None:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_rfc3339()
            meta.pop("deletionTimestamp", None)
            meta.pop("deletionGracePeriodSeconds", None)
        else:
            om = old["metadata"]
            for k in ("uid", "creationTimestamp", "deletionTimestamp",
                      "deletionGracePeriodSeconds"):
                if k in om:
                    meta[k] = om[k]
                else:
                    meta.pop(k, None)
        for k in ("labels", "annotations"):
            if k in meta and meta[k] is None:
                del meta[k]
            for lk, lv in list((meta.get(k) or {}).items()):
                if not isinstance(lv, str):
                    raise invalid(rt, name, f"metadata.{k}",
                                  f"Invalid value: {json.dumps(lv)}: must be a string")
        hook = getattr(self, "_defaults_" + rt.plural, None) if not rt.custom else None
        if hook:
            hook(rt, obj, old)
        if rt.custom and rt.schema:
            apply_schema_defaults(obj, rt.schema)
            self._validate_custom(rt, obj)
        if rt.group:
            if old is None:
                meta["generation"] = 1
            else:
                def strip(o):
                    return {k: v for k, v in o.items()
                            if k not in ("metadata", "status", "apiVersion", "kind")}
                gen = old["metadata"].get("generation", 1)
                meta["generation"] = gen + (1 if strip(obj) != strip(old) else 0)
        return obj

    def _validate_custom(self, rt, obj):
        """Required fields and integer types from a CRD schema (enough to catch a client
        writing an ExpectedDeploymentScale without expectedScale, or a string scale)."""
        def walk(value, schema, path):
            if not isinstance(schema, dict):
                return
            typ = schema.get("type")
            if typ == "integer" and value is not None and \
                    (isinstance(value, bool) or not isinstance(value, int)):
                raise invalid(rt, obj["metadata"]["name"], path,
                              f'Invalid value: "{type(value).__name__}": {path} in body must '
                              f'be of type integer: "{type(value).__name__}"')
            if typ == "object" and isinstance(value, dict):
                for req in schema.get("required") or []:
                    if req not in value:
                        raise invalid(rt, obj["metadata"]["name"], f"{path}.{req}",
                                      "Required value")
                for k, sub in (schema.get("properties") or {}).items():
                    if k in value:
                        walk(value[k], sub, f"{path}.{k}")
        schema = dict(rt.schema)
        props = dict(schema.get("properties") or {})
        props.pop("metadata", None)
        schema["properties"] = props
        walk(obj, schema, "")

    # kind-specific defaults ---------------------------------------------------------------

    def _defaults_deployments(self, rt, obj, old):
        spec = obj.setdefault("spec", {})
        name = obj["metadata"]["name"]
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault("strategy", {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxUnavailable": "25%",
                                                       "maxSurge": "25%"}})
        self._check_replicas(rt, name, spec.get("replicas"))
        sel = spec.get("selector")
        if not sel:
            raise invalid(rt, name, "spec.selector", "Required value")
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        try:
            matches = LabelSelector.from_spec(sel).matches(labels)
        except SelectorError as e:
            raise invalid(rt, name, "spec.selector", str(e))
        if not matches:
            raise invalid(rt, name, "spec.template.metadata.labels",
                          f"Invalid value: {json.dumps(labels)}: `selector` does not match "
                          f"template `labels`")
        if not ((spec.get("template") or {}).get("spec") or {}).get("containers"):
            raise invalid(rt, name, "spec.template.spec.containers", "Required value")
        if old is not None and (old.get("spec") or {}).get("selector") != sel:
            raise invalid(rt, name, "spec.selector",
                          f"Invalid value: {json.dumps(sel)}: field is immutable")

    _defaults_replicasets = _defaults_deployments

    def _defaults_statefulsets(self, rt, obj, old):
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        self._check_replicas(rt, obj["metadata"]["name"], spec.get("replicas"))

    def _check_replicas(self, rt, name, replicas):
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            raise bad_request(f"json: cannot unmarshal {type(replicas).__name__} into Go "
                              f"struct field spec.replicas of type int32")
        if replicas < 0:
            raise invalid(rt, name, "spec.replicas",
                          f"Invalid value: {replicas}: must be greater than or equal to 0")

    def _defaults_secrets(self, rt, obj, old):
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None) or {}
        data = obj.get("data") or {}
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()
        for k, v in data.items():
            try:
                base64.b64decode(v, validate=True)
            except Exception:
                raise invalid(rt, obj["metadata"]["name"], f"data[{k}]",
                              "Invalid value: illegal base64 data")
        if data:
            obj["data"] = data

    def _defaults_services(self, rt, obj, old):
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if old is not None and (old.get("spec") or {}).get("clusterIP"):
            spec["clusterIP"] = old["spec"]["clusterIP"]
            spec["clusterIPs"] = old["spec"].get("clusterIPs", [spec["clusterIP"]])
        elif spec.get("clusterIP") != "None":
            self._cluster_ips += 1
            ip = f"10.96.{self._cluster_ips // 250}.{self._cluster_ips % 250 + 1}"
            spec.setdefault("clusterIP", ip)
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
        for p in spec.get("ports") or []:
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))

    def _defaults_namespaces(self, rt, obj, old):
        labels = obj["metadata"].setdefault("labels", {})
        labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        if not (obj.get("status") or {}).get("phase"):
            obj["status"] = {"phase": "Active"}

    def _defaults_pods(self, rt, obj, old):
        spec = obj.setdefault("spec", {})
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
        if not spec.get("containers"):
            raise invalid(rt, obj["metadata"]["name"], "spec.containers", "Required value")
        status = obj.setdefault("status", {})
        status.setdefault("phase", "Pending")
        status.setdefault("qosClass", "BestEffort")

    def _defaults_jobs(self, rt, obj, old):
        spec = obj.setdefault("spec", {})
        name = obj["metadata"]["name"]
        spec.setdefault("parallelism", 1)
        spec.setdefault("completions", 1)
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        tmpl = spec.setdefault("template", {})
        if not spec.get("manualSelector"):
            uid = obj["metadata"]["uid"]
            auto = {"batch.kubernetes.io/controller-uid": uid, "controller-uid": uid,
                    "batch.kubernetes.io/job-name": name, "job-name": name}
            labels = obj["metadata"].setdefault("labels", {})
            for k in ("batch.kubernetes.io/controller-uid", "controller-uid",
                      "batch.kubernetes.io/job-name", "job-name"):
                if old is None or k in ((old["metadata"].get("labels")) or {}):
                    labels.setdefault(k, auto[k])
            if not labels:
                del obj["metadata"]["labels"]
            tl = tmpl.setdefault("metadata", {}).setdefault("labels", {})
            tl.update(auto)
            spec.setdefault("selector", {"matchLabels": {
                "batch.kubernetes.io/controller-uid": uid}})
        ps = tmpl.setdefault("spec", {})
        if ps.get("restartPolicy") not in ("Never", "OnFailure"):
            raise invalid(rt, name, "spec.template.spec.restartPolicy",
                          f'Unsupported value: "{ps.get("restartPolicy", "Always")}": '
                          f'supported values: "OnFailure", "Never"')
        if old is not None:
            ospec = old.get("spec") or {}
            if ospec.get("template") != spec.get("template"):
                raise invalid(rt, name, "spec.template", "Invalid value: field is immutable")

    def _defaults_customresourcedefinitions(self, rt, obj, old):
        spec = obj.get("spec") or {}
        names = spec.get("names") or {}
        try:
            want = f"{names['plural']}.{spec['group']}"
        except KeyError as e:
            raise invalid(rt, obj["metadata"].get("name", ""), f"spec.{e.args[0]}",
                          "Required value")
        if obj["metadata"]["name"] != want:
            raise invalid(rt, obj["metadata"]["name"], "metadata.name",
                          f'Invalid value: "{obj["metadata"]["name"]}": must be spec.names.'
                          f'plural+"."+spec.group')
        obj["status"] = {
            "acceptedNames": {k: v for k, v in names.items()},
            "storedVersions": [v["name"] for v in spec.get("versions") or []
                               if v.get("storage")],
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                 "message": "no conflicts found", "lastTransitionTime": now_rfc3339()},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted",
                 "lastTransitionTime": now_rfc3339()}]}

    # --- writing ------------------------------------------------------------------------

    def _commit(self, rt, ns, obj, old, etype, ctx):
        if ctx.dry_run:
            obj["metadata"].setdefault("resourceVersion",
                                       (old or {}).get("metadata", {}).get("resourceVersion",
                                                                           ""))
            return obj
        ns = ns if rt.namespaced else ""
        self.store.commit(rt.group, rt.plural, ns, obj["metadata"]["name"], obj, etype, old)
        if rt.plural == "customresourcedefinitions" and rt.group == "apiextensions.k8s.io":
            if etype == "DELETED":
                self._crd_gone(obj)
            else:
                for t in types_from_crd(obj):
                    self.registry.add(t)
        return copy.deepcopy(obj)

    def _crd_gone(self, crd):
        for t in self.registry.remove_crd(crd["metadata"]["name"]):
            for o in self.store.list(t.group, t.plural):
                m = o["metadata"]
                self.store.commit(t.group, t.plural, m.get("namespace", ""), m["name"],
                                  copy.deepcopy(o), "DELETED", o)

    def _track(self, rt, old, new, ctx, subresource=""):
        mf = P.ManagedFields(old or new)
        if old is None:
            mf.entries = []
        mf.record_update(old, new, ctx.manager, rt.api_version, now_rfc3339(), subresource)
        new["metadata"]["managedFields"] = mf.render()
        if not new["metadata"]["managedFields"]:
            del new["metadata"]["managedFields"]

    def _unknown_fields(self, rt, obj, ctx, name="", apply=False):
        """Drop the fields the type does not declare, or refuse them (validation.py)."""
        found = V.unknown_fields(rt, obj)
        if not found:
            return
        paths = [p for _, _, p in found]
        if apply:
            gvk = f"{rt.api_version}, Kind={rt.kind}"
            where = f"{obj.get('metadata', {}).get('namespace', '')}/{name}" \
                if rt.namespaced else name
            raise bad_request(f"failed to create typed patch object ({where}; {gvk}): " +
                              ", ".join(f".{p}: field not declared in schema" for p in paths))
        if ctx.field_validation == "Strict":
            raise bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a '
                              f'{rt.kind}: strict decoding error: ' +
                              ", ".join(f'unknown field "{p}"' for p in paths))
        V.prune(found)
        if ctx.field_validation != "Ignore":
            ctx.warnings += [f'unknown field "{p}"' for p in paths]

    def create(self, rt, ns, body, ctx):
        self._check_type(rt, body, ns)
        obj = copy.deepcopy(body)
        self._unknown_fields(rt, obj, ctx, (obj.get("metadata") or {}).get("name", ""))
        meta = _meta(obj)
        meta.pop("resourceVersion", None)
        meta.pop("managedFields", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + random_suffix()
        if rt.has_status and not ctx.raw_status:
            obj.pop("status", None)
        podsecurity.admit(self.store, rt, ns, obj, ctx)
        with self.store.lock:
            name = meta.get("name") or ""
            if name and self.store.get(rt.group, rt.plural, ns if rt.namespaced else "",
                                       name) is not None:
                raise ApiError(409, "AlreadyExists", f'{rt.qualified} "{name}" already exists',
                               {"name": name, "group": rt.group, "kind": rt.plural})
            self._finish(rt, ns, obj, None, ctx)
            self._track(rt, None, obj, ctx)
            return self._commit(rt, ns, obj, None, "ADDED", ctx)

    def update(self, rt, ns, name, body, ctx, subresource=""):
        self._check_type(rt, body, ns)
        meta = body.get("metadata") or {}
        if meta.get("name") and meta["name"] != name:
            raise bad_request(f'the name of the object ({meta["name"]}) does not match the '
                              f'name on the URL ({name})')
        with self.store.lock:
            old = self.store.get(rt.group, rt.plural, ns if rt.namespaced else "", name)
            if old is None:
                raise not_found(rt, name)
            want_rv = meta.get("resourceVersion")
            if want_rv and want_rv != old["metadata"]["resourceVersion"]:
                raise conflict(rt, name)
            if subresource == "status":
                obj = copy.deepcopy(old)
                if "status" in body:
                    obj["status"] = copy.deepcopy(body["status"])
                else:
                    obj.pop("status", None)
            else:
                obj = copy.deepcopy(body)
                self._unknown_fields(rt, obj, ctx, name)
                _meta(obj)["name"] = name
                if "managedFields" in old["metadata"]:
                    obj["metadata"]["managedFields"] = old["metadata"]["managedFields"]
                else:
                    obj["metadata"].pop("managedFields", None)
                if rt.has_status and not ctx.raw_status:
                    if "status" in old:
                        obj["status"] = copy.deepcopy(old["status"])
                    else:
                        obj.pop("status", None)
            return self._store_update(rt, ns, name, old, obj, ctx, subresource)

    def _store_update(self, rt, ns, name, old, obj, ctx, subresource=""):
        self._finish(rt, ns, obj, old, ctx)
        self._track(rt, old, obj, ctx, subresource)
        m = obj["metadata"]
        if m.get("deletionTimestamp") and not m.get("finalizers") and \
                not (rt.plural == "pods" and rt.group == "" and self._pod_graceful(old) and
                     m.get("deletionGracePeriodSeconds") != 0):
            return self._commit(rt, ns, obj, old, "DELETED", ctx)
        if obj == old:  # no-op writes keep the resourceVersion and send no event
            return copy.deepcopy(old)
        return self._commit(rt, ns, obj, old, "MODIFIED", ctx)

    def patch(self, rt, ns, name, body, content_type, ctx, subresource=""):
        """Returns (http code, object)."""
        ctype = (content_type or "").split(";")[0].strip()
        if ctype == APPLY_PATCH_CBOR:
            raise ApiError(415, "UnsupportedMediaType", "CBOR is not supported here")
        if ctype not in (MERGE_PATCH, STRATEGIC_PATCH, JSON_PATCH, APPLY_PATCH):
            raise ApiError(415, "UnsupportedMediaType",
                           f"the body of the request was in an unknown format - accepted "
                           f"media types include: {JSON_PATCH}, {MERGE_PATCH}, "
                           f"{APPLY_PATCH}" + ("" if rt.custom else f", {STRATEGIC_PATCH}"))
        if ctype == STRATEGIC_PATCH and rt.custom:
            raise ApiError(415, "UnsupportedMediaType",
                           f"the body of the request was in an unknown format - accepted "
                           f"media types include: {JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}")
        try:
            if ctype == APPLY_PATCH:
                doc = yaml.safe_load(body.decode() if isinstance(body, bytes) else body)
            else:
                doc = json.loads(body or b"null")
        except Exception as e:
            raise bad_request(f"error decoding patch: {e}")
        if ctype == APPLY_PATCH:
            return self._apply(rt, ns, name, doc, ctx, subresource)
        if subresource == "scale":
            return 200, self.patch_scale(rt, ns, name, doc, ctype, ctx)
        with self.store.lock:
            old = self.store.get(rt.group, rt.plural, ns if rt.namespaced else "", name)
            if old is None:
                raise not_found(rt, name)
            new = self._apply_patch(rt, name, old, doc, ctype)
            if not isinstance(new, dict):
                raise bad_request("the patch did not produce an object")
            if (new.get("metadata") or {}).get("name", name) != name:
                raise bad_request("the name of the object does not match the name on the URL")
            want_rv = _patch_rv(doc, ctype)
            if want_rv and want_rv != old["metadata"]["resourceVersion"]:
                raise conflict(rt, name)
            new.setdefault("metadata", {})["resourceVersion"] = old["metadata"]["resourceVersion"]
            if subresource == "status":
                obj = copy.deepcopy(old)
                obj["status"] = new.get("status")
                if obj["status"] is None:
                    obj.pop("status")
            else:
                obj = new
                self._unknown_fields(rt, obj, ctx, name)
                if rt.has_status and not ctx.raw_status:
                    if "status" in old:
                        obj["status"] = copy.deepcopy(old["status"])
                    else:
                        obj.pop("status", None)
            return 200, self._store_update(rt, ns, name, old, obj, ctx, subresource)

    def _apply_patch(self, rt, name, target, doc, ctype):
        try:
            if ctype == MERGE_PATCH:
                return P.merge_patch(target, doc)
            if ctype == STRATEGIC_PATCH:
                if not isinstance(doc, dict):
                    raise P.PatchError("a strategic merge patch must be an object")
                return P.strategic_merge(target, doc)
            return P.json_patch(target, doc)
        except P.PatchError as e:
            raise ApiError(422, "Invalid", str(e)) if ctype == JSON_PATCH else bad_request(str(e))

    def _apply(self, rt, ns, name, doc, ctx, subresource):
        if not ctx.manager or ctx.manager_from_agent:
            raise ApiError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: '
                           'fieldManager: Required value: is required for apply patch')
        if not isinstance(doc, dict):
            raise bad_request("the apply configuration must be an object")
        if subresource == "scale":
            return 200, self.patch_scale(rt, ns, name, doc, MERGE_PATCH, ctx)
        self._check_type(rt, doc, ns)
        if not doc.get("apiVersion") or not doc.get("kind"):
            raise bad_request("apiVersion and kind are required in an apply configuration")
        if (doc.get("metadata") or {}).get("name", name) != name:
            raise bad_request("the name of the object does not match the name on the URL")
        applied = copy.deepcopy(doc)
        _meta(applied)["name"] = name
        if rt.namespaced:
            applied["metadata"]["namespace"] = ns
        if subresource != "status":
            self._unknown_fields(rt, applied, ctx, name, apply=True)
        with self.store.lock:
            old = self.store.get(rt.group, rt.plural, ns if rt.namespaced else "", name)
            want_rv = applied["metadata"].pop("resourceVersion", None)
            if old is not None and want_rv and want_rv != old["metadata"]["resourceVersion"]:
                raise conflict(rt, name)
            if old is None and want_rv:
                raise not_found(rt, name)
            mf = P.ManagedFields(old or {})
            if subresource == "status":
                if old is None:
                    raise not_found(rt, name)
                obj = copy.deepcopy(old)
                obj["status"] = P.strategic_merge(old.get("status"), applied.get("status") or {})
                return 200, self._store_update(rt, ns, name, old, obj, ctx, subresource)
            for_apply = {k: v for k, v in applied.items() if k != "status"} \
                if rt.has_status else applied
            try:
                obj = mf.apply(old, for_apply, ctx.manager, rt.api_version, now_rfc3339(),
                               ctx.force)
            except P.ApplyConflict as c:
                raise _apply_conflict(rt, name, c.conflicts)
            if old is not None and rt.has_status and "status" in old:
                obj["status"] = copy.deepcopy(old["status"])
            obj["metadata"]["managedFields"] = mf.render()
            if old is None:
                if rt.has_status and not ctx.raw_status:
                    obj.pop("status", None)
                obj["metadata"].pop("resourceVersion", None)
                self._finish(rt, ns, obj, None, ctx)
                return 201, self._commit(rt, ns, obj, None, "ADDED", ctx)
            obj["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            self._finish(rt, ns, obj, old, ctx)
            if _ignoring_field_times(obj) == _ignoring_field_times(old):
                return 200, copy.deepcopy(old)
            m = obj["metadata"]
            if m.get("deletionTimestamp") and not m.get("finalizers") and rt.plural != "pods":
                return 200, self._commit(rt, ns, obj, old, "DELETED", ctx)
            return 200, self._commit(rt, ns, obj, old, "MODIFIED", ctx)

    # --- scale subresource --------------------------------------------------------------

    def get_scale(self, rt, ns, name):
        if not rt.has_scale:
            raise NO_RESOURCE
        obj = self.get(rt, ns, name)
        return _scale_of(obj)

    def update_scale(self, rt, ns, name, body, ctx):
        if not rt.has_scale:
            raise NO_RESOURCE
        if not isinstance(body, dict) or body.get("kind") not in (None, "Scale"):
            raise bad_request("the body of a scale update must be a Scale")
        replicas = (body.get("spec") or {}).get("replicas", 0)
        want_rv = (body.get("metadata") or {}).get("resourceVersion")
        return self._set_replicas(rt, ns, name, replicas, want_rv, ctx)

    def patch_scale(self, rt, ns, name, doc, ctype, ctx):
        if not rt.has_scale:
            raise NO_RESOURCE
        with self.store.lock:
            current = self.get_scale(rt, ns, name)
            new = self._apply_patch(rt, name, current, doc, ctype)
            replicas = ((new or {}).get("spec") or {}).get("replicas", 0)
            want_rv = _patch_rv(doc, ctype)
            return self._set_replicas(rt, ns, name, replicas, want_rv, ctx)

    def _set_replicas(self, rt, ns, name, replicas, want_rv, ctx):
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            raise bad_request("spec.replicas must be an integer")
        if replicas < 0:
            raise invalid(rt, name, "spec.replicas",
                          f"Invalid value: {replicas}: must be greater than or equal to 0",
                          kind="Scale")
        with self.store.lock:
            old = self.store.get(rt.group, rt.plural, ns, name)
            if old is None:
                raise not_found(rt, name)
            if want_rv and want_rv != old["metadata"]["resourceVersion"]:
                raise conflict(rt, name)
            obj = copy.deepcopy(old)
            obj.setdefault("spec", {})["replicas"] = replicas
            obj = self._store_update(rt, ns, name, old, obj, ctx, "scale")
            return _scale_of(obj)

    # --- delete -------------------------------------------------------------------------

    def _pod_graceful(self, pod):
        return bool((pod.get("spec") or {}).get("nodeName")) and \
            (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded")

    def delete(self, rt, ns, name, ctx, options=None):
        options = options or {}
        ns = ns if rt.namespaced else ""
        with self.store.lock:
            old = self.store.get(rt.group, rt.plural, ns, name)
            if old is None:
                raise not_found(rt, name)
            pre = options.get("preconditions") or {}
            if pre.get("resourceVersion") and \
                    pre["resourceVersion"] != old["metadata"]["resourceVersion"]:
                raise conflict(rt, name)
            if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
                raise ApiError(409, "Conflict",
                               f'Operation cannot be fulfilled on {rt.qualified} "{name}": '
                               f'Precondition failed: UID in precondition: {pre["uid"]}, UID '
                               f'in object meta: {old["metadata"]["uid"]}')
            policy = options.get("propagationPolicy")
            if policy is None and options.get("orphanDependents") is True:
                policy = "Orphan"
            if policy not in (None, "Orphan", "Background", "Foreground"):
                raise bad_request(f"unsupported propagationPolicy {policy!r}")
            obj = copy.deepcopy(old)
            meta = obj["metadata"]
            grace = options.get("gracePeriodSeconds")
            finalizers = list(meta.get("finalizers") or [])
            if policy == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            if policy == "Orphan" and not ctx.dry_run:
                self._orphan(old)
            if rt.plural == "pods" and rt.group == "" and self._pod_graceful(old) and \
                    grace != 0 and not meta.get("deletionTimestamp"):
                if grace is None:
                    grace = (old.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
                meta["deletionTimestamp"] = now_rfc3339(time.time() + grace)
                meta["deletionGracePeriodSeconds"] = grace
                if finalizers:
                    meta["finalizers"] = finalizers
                return self._commit(rt, ns, obj, old, "MODIFIED", ctx)
            if finalizers:
                if meta.get("deletionTimestamp") and meta.get("finalizers") == finalizers:
                    if grace == 0 and meta.get("deletionGracePeriodSeconds") != 0:
                        # a terminating Pod whose containers are done: it goes as soon as
                        # the finalizers are removed
                        meta["deletionGracePeriodSeconds"] = 0
                        return self._commit(rt, ns, obj, old, "MODIFIED", ctx)
                    return copy.deepcopy(old)
                meta.setdefault("deletionTimestamp", now_rfc3339())
                meta.setdefault("deletionGracePeriodSeconds", 0)
                meta["finalizers"] = finalizers
                if rt.group:
                    meta["generation"] = meta.get("generation", 1) + 1
                return self._commit(rt, ns, obj, old, "MODIFIED", ctx)
            if rt.plural == "namespaces" and rt.group == "" and not ctx.dry_run:
                self._empty_namespace(name)
            return self._commit(rt, ns, obj, old, "DELETED", ctx)

    def _orphan(self, owner):
        uid = owner["metadata"]["uid"]
        for group, plural in self.store.kinds():
            for o in self.store.list(group, plural):
                refs = o["metadata"].get("ownerReferences") or []
                if any(r.get("uid") == uid for r in refs):
                    new = copy.deepcopy(o)
                    new["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid]
                    if not new["metadata"]["ownerReferences"]:
                        del new["metadata"]["ownerReferences"]
                    m = new["metadata"]
                    self.store.commit(group, plural, m.get("namespace", ""), m["name"], new,
                                      "MODIFIED", o)

    def _empty_namespace(self, ns):
        for group, plural in self.store.kinds():
            rt = self._rt_of(group, plural)
            if rt is None or not rt.namespaced:
                continue
            for o in self.store.list(group, plural, ns):
                self.store.commit(group, plural, ns, o["metadata"]["name"], copy.deepcopy(o),
                                  "DELETED", o)

    def _rt_of(self, group, plural):
        for t in self.registry.all():
            if (t.group, t.plural) == (group, plural):
                return t
        return None

    def delete_collection(self, rt, ns, label_selector, field_selector, ctx, options=None):
        doc = self.list(rt, ns, label_selector, field_selector)
        items = []
        for o in doc["items"]:
            m = o["metadata"]
            try:
                items.append(self.delete(rt, m.get("namespace", ""), m["name"], ctx, options))
            except ApiError as e:
                if e.code != 404:
                    raise
        for o in items:
            if not rt.custom:
                o.pop("kind", None)
                o.pop("apiVersion", None)
        doc["items"] = items
        return doc

    # --- test hooks ---------------------------------------------------------------------

    def put(self, rt, obj, ctx=None):
        """Create or replace, keeping the given status (test setup)."""
        ctx = ctx or Ctx(manager="k8s-sim-test", raw_status=True)
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") or ("default" if rt.namespaced else "")
        body = copy.deepcopy(obj)
        body.setdefault("metadata", {}).pop("resourceVersion", None)
        with self.store.lock:
            if self.store.get(rt.group, rt.plural, ns if rt.namespaced else "",
                              meta.get("name", "")) is None:
                return self.create(rt, ns, body, ctx)
            return self.update(rt, ns, meta["name"], body, ctx)


def _drop_nulls(v):
    if isinstance(v, dict):
        return {k: _drop_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_drop_nulls(x) for x in v]
    return v


def _ignoring_field_times(obj):
    """The object as the API server compares it to skip a no-op apply: the times in
    managedFields aside, but an ownership change (a field now shared) is a change."""
    o = dict(obj)
    o["metadata"] = dict(obj["metadata"])
    o["metadata"]["managedFields"] = [{k: v for k, v in e.items() if k != "time"}
                                      for e in obj["metadata"].get("managedFields") or []]
    return o


def _patch_rv(doc, ctype):
    if ctype == JSON_PATCH:
        for op in doc or []:
            if op.get("path") == "/metadata/resourceVersion" and op.get("op") in ("add",
                                                                                 "replace"):
                return op.get("value")
        return None
    if isinstance(doc, dict):
        return (doc.get("metadata") or {}).get("resourceVersion")
    return None


def _scale_of(obj):
    meta = obj["metadata"]
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": meta["name"], "namespace": meta.get("namespace"),
                         "uid": meta["uid"], "resourceVersion": meta["resourceVersion"],
                         "creationTimestamp": meta["creationTimestamp"]},
            "spec": {"replicas": spec.get("replicas", 1)},
            "status": {"replicas": status.get("replicas", 0),
                       "selector": selector_string(spec.get("selector"))}}


def _conflict_manager(e):
    """A manager as the API server names it in a conflict (fieldmanager's printManager)."""
    out = json.dumps(e["manager"])
    if e.get("subresource"):
        out += f' with subresource {json.dumps(e["subresource"])}'
    if e.get("operation") == "Update":
        out += f' using {e["apiVersion"]}' + (f' at {e["time"]}' if e.get("time") else "")
    return out


def _apply_conflict(rt, name, conflicts):
    """409 as the API server answers a conflicting apply: one conflict on one line, more
    grouped by manager; causes carry no object details."""
    if len(conflicts) == 1:
        e, f = conflicts[0]
        msg = f"Apply failed with 1 conflict: conflict with {_conflict_manager(e)}: {f}"
    else:
        by_manager = {}
        for e, f in conflicts:
            by_manager.setdefault(_conflict_manager(e), []).append(f)
        lines = []
        for m in sorted(by_manager):
            lines.append(f"conflicts with {m}:")
            lines += [f"- {f}" for f in by_manager[m]]
        msg = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", msg,
                    {"causes": [{"reason": "FieldManagerConflict",
                                 "message": f"conflict with {_conflict_manager(e)}",
                                 "field": f} for e, f in conflicts]})
