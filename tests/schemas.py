"""Is what chartreuse injects a Kubernetes object the API server would take?

The strict Kubernetes 1.32 JSON schemas (k8s-schemas/README.md: every $ref inlined, every
object closed, so an unknown or misspelt field is an error) judge the shape. What a schema
cannot say, and the API server still checks, is checked here in code: names (a DNS-1123
label for a namespace, a subdomain for the rest, 63 characters at most for a Job), label
and annotation keys and label values, unique container and volume names, mounts naming a
volume, env names, data keys, base64 in Secret.data, and that the objects name each other
(the Job's ConfigMap and ServiceAccount, the RoleBinding's Role and subject).

    from schemas import assert_valid_objects
    assert_valid_objects(list_of_objects)
"""
import base64
import binascii
import functools
import hashlib
import json
import os
import re
from pathlib import Path

import jsonschema
import pytest

REPO = Path(__file__).resolve().parent.parent
# The files and their sha256 as k8s-schemas/README.md lists them: nothing else is judged by.
SCHEMA_SHA256 = {
    "job-batch-v1.json": "ee838d5aaa7a5038b6ccb893a9904d6b565ce3f34df962b72761f0c8674c3923",
    "serviceaccount-v1.json": "c6e51293a95243d0dd75016ad775ec18504cdebccf3031526cbd7decd7cc95f3",
    "secret-v1.json": "2e1cb76e559c9008fbb221daefbac47034bb9d73d909502a057f4ea8c40bfd2d",
    "configmap-v1.json": "0e36f65157f453a2ae67bc1749f2300229aace9b5a42faa54b9b4d747301b9f8",
    "role-rbac-v1.json": "412f2fe9d25dbe8c5c9cba127079a319d33e09a2b40c8f3e7fe01d8841a548a8",
    "rolebinding-rbac-v1.json":
        "253886b14732c3c8e7d36f492e88778e498e7fb71b788640d9fea949d690dcee",
    "customresourcedefinition-apiextensions-v1.json":
        "7e22a3786de404a9fea4e936e229278dc99395acd530a32a220a8302a12df9c3",
}


def schema_dir():
    """$CHARTREUSE_K8S_SCHEMAS, else tests/k8s-schemas, else the shared copy beside the
    repository (../shared/k8s-schemas, or /work/shared's)."""
    for d in (os.environ.get("CHARTREUSE_K8S_SCHEMAS"), REPO / "tests" / "k8s-schemas",
              REPO.parent / "shared" / "k8s-schemas", Path("/work/shared/k8s-schemas")):
        if d and (Path(d) / "job-batch-v1.json").exists():
            return Path(d)
    pytest.fail("the Kubernetes JSON schemas are missing: set CHARTREUSE_K8S_SCHEMAS to a "
                "directory holding " + ", ".join(sorted(SCHEMA_SHA256)))


@functools.lru_cache(maxsize=None)
def validators():
    """(apiVersion, kind) -> validator, from each schema's x-kubernetes-group-version-kind."""
    out = {}
    for name, digest in SCHEMA_SHA256.items():
        raw = (schema_dir() / name).read_bytes()
        assert hashlib.sha256(raw).hexdigest() == digest, f"{name}: not the file README lists"
        schema = json.loads(raw)
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft4Validator)
        for gvk in schema["x-kubernetes-group-version-kind"]:
            api = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
            out[(api, gvk["kind"])] = cls(schema)
    return out


DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")


def dns_label(v):
    return isinstance(v, str) and len(v) <= 63 and DNS_LABEL.fullmatch(v) is not None


def dns_subdomain(v):
    return isinstance(v, str) and len(v) <= 253 and DNS_SUBDOMAIN.fullmatch(v) is not None


def qualified_key(k):
    """A label or annotation key: [prefix/]name, the prefix a subdomain."""
    prefix, _, name = k.rpartition("/")
    return (not prefix or dns_subdomain(prefix)) and len(name) <= 63 and \
        QUALIFIED_NAME.fullmatch(name) is not None


def label_value(v):
    return isinstance(v, str) and len(v) <= 63 and (v == "" or QUALIFIED_NAME.fullmatch(v))


def metadata_problems(meta, where, label_value_too):
    """label_value_too: a Job, whose name the API server checks as a subdomain
    (batch/validation's NameIsDNSSubdomain) and which its Pods carry as the value of the
    job-name labels, so 63 characters at most."""
    out = []
    name = meta.get("name")
    if not dns_subdomain(name) or (label_value_too and not label_value(name)):
        out.append(f"{where}: metadata.name {name!r} is not a DNS-1123 subdomain"
                   f"{' usable as a label value' if label_value_too else ''}")
    if "namespace" in meta and not dns_label(meta["namespace"]):
        out.append(f"{where}: metadata.namespace {meta['namespace']!r} is not a DNS-1123 label")
    out += map_problems(meta, where + ": metadata")
    return out


def map_problems(meta, where):
    out = []
    for k, v in (meta.get("labels") or {}).items():
        if not qualified_key(k) or not label_value(v):
            out.append(f"{where}.labels: {k!r}: {v!r} is not a valid label")
    for k in (meta.get("annotations") or {}):
        if not qualified_key(k):
            out.append(f"{where}.annotations: {k!r} is not a valid key")
    return out


def pod_problems(spec, where):
    out = []
    containers = (spec.get("initContainers") or []) + (spec.get("containers") or [])
    names = [c.get("name") for c in containers]
    if len(set(names)) != len(names):
        out.append(f"{where}: container names repeat: {names}")
    volumes = [v.get("name") for v in spec.get("volumes") or []]
    if len(set(volumes)) != len(volumes):
        out.append(f"{where}: volume names repeat: {volumes}")
    for n in names + volumes:
        if not dns_label(n):
            out.append(f"{where}: {n!r} is not a DNS-1123 label")
    for c in containers:
        mounts = c.get("volumeMounts") or []
        for m in mounts:
            if m.get("name") not in volumes:
                out.append(f"{where}: container {c['name']} mounts {m.get('name')!r}, "
                           "which is no volume")
        paths = [m.get("mountPath") for m in mounts]
        if len(set(paths)) != len(paths):
            out.append(f"{where}: container {c['name']} mounts twice at one path: {paths}")
        env = [e.get("name") for e in c.get("env") or []]
        for e in env:
            if not isinstance(e, str) or not ENV_NAME.fullmatch(e):
                out.append(f"{where}: container {c['name']}: env name {e!r} is not valid")
        for e in c.get("env") or []:
            ref = (e.get("valueFrom") or {}).get("secretKeyRef") or \
                (e.get("valueFrom") or {}).get("configMapKeyRef")
            if ref and not (dns_subdomain(ref.get("name")) and CONFIG_KEY.fullmatch(ref["key"])):
                out.append(f"{where}: container {c['name']}: env {e['name']} refers to "
                           f"{ref!r}")
    if "serviceAccountName" in spec and not dns_subdomain(spec["serviceAccountName"]):
        out.append(f"{where}: serviceAccountName {spec['serviceAccountName']!r} is not valid")
    for v in spec.get("volumes") or []:
        ref = (v.get("configMap") or {}).get("name") or (v.get("secret") or {}).get("secretName")
        if ref is not None and not dns_subdomain(ref):
            out.append(f"{where}: volume {v['name']} refers to {ref!r}")
    return out


def object_problems(obj):
    """What the schema and the API server's own checks refuse in obj."""
    kind, api = obj.get("kind"), obj.get("apiVersion")
    meta = obj.get("metadata") or {}
    where = f"{kind} {meta.get('name')}"
    validator = validators().get((api, kind))
    if validator is None:
        return [f"{where}: no schema for {api} {kind}"]
    out = [f"{where}: {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
           for e in validator.iter_errors(obj)]
    out += metadata_problems(meta, where, label_value_too=kind == "Job")
    if kind == "Job":
        tpl = obj["spec"]["template"]
        out += map_problems(tpl.get("metadata") or {}, where + ": template.metadata")
        out += pod_problems(tpl["spec"], where)
        if tpl["spec"].get("restartPolicy") not in ("Never", "OnFailure"):
            out.append(f"{where}: a Job's pods restart Never or OnFailure")
    if kind in ("Secret", "ConfigMap"):
        for field in ("data", "stringData", "binaryData"):
            for k in obj.get(field) or {}:
                if len(k) > 253 or not CONFIG_KEY.fullmatch(k):
                    out.append(f"{where}: {field} key {k!r} is not valid")
    if kind == "Secret" or (kind == "ConfigMap" and obj.get("binaryData")):
        field = "data" if kind == "Secret" else "binaryData"
        for k, v in (obj.get(field) or {}).items():
            try:
                base64.b64decode(v, validate=True)
            except (binascii.Error, TypeError):
                out.append(f"{where}: {field}.{k} is not base64")
    if kind == "RoleBinding":
        ref = obj["roleRef"]
        if ref.get("apiGroup") != "rbac.authorization.k8s.io" or \
                ref.get("kind") not in ("Role", "ClusterRole"):
            out.append(f"{where}: roleRef {ref!r}")
    return out


def reference_problems(objs):
    """The injected objects that name one another exist among them."""
    by = {}
    for o in objs:
        by.setdefault(o["kind"], set()).add(o["metadata"]["name"])
    out = []
    for o in objs:
        where = f"{o['kind']} {o['metadata']['name']}"
        if o["kind"] == "RoleBinding":
            if o["roleRef"]["name"] not in by.get("Role", set()):
                out.append(f"{where}: its Role {o['roleRef']['name']} is not injected")
            for s in o.get("subjects") or []:
                if s["kind"] == "ServiceAccount" and "ServiceAccount" in by and \
                        s["name"] not in by["ServiceAccount"]:
                    out.append(f"{where}: its ServiceAccount {s['name']} is not injected")
        if o["kind"] == "Job":
            spec = o["spec"]["template"]["spec"]
            sa = spec.get("serviceAccountName")
            if "ServiceAccount" in by and sa not in by["ServiceAccount"]:
                out.append(f"{where}: its ServiceAccount {sa} is not injected")
            for v in spec.get("volumes") or []:
                cm = (v.get("configMap") or {}).get("name")
                if cm and cm not in by.get("ConfigMap", set()):
                    out.append(f"{where}: its ConfigMap {cm} is not injected")
    return out


def assert_valid_objects(objs, complete=True):
    """Every object passes; with complete, the ones named by another are among objs."""
    assert objs, "no objects to check"
    problems = [p for o in objs for p in object_problems(o)]
    if complete:
        problems += reference_problems(objs)
    assert not problems, "\n".join(problems)
