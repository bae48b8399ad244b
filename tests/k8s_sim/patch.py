"""The four PATCH flavours the API server accepts, plus the field ownership that server-side
apply needs.

- JSON merge patch (RFC 7386, `application/merge-patch+json`): maps merge, `null` deletes,
  lists are replaced.
- Strategic merge patch (`application/strategic-merge-patch+json`, built-in kinds only, as
  on a real server: custom resources answer 415): like a merge patch, but lists that the
  Kubernetes types declare with a merge key (containers by `name`, volumeMounts by
  `mountPath`...) are merged item by item, and the `$patch`, `$retainKeys`,
  `$setElementOrder/...` and `$deleteFromPrimitiveList/...` directives that
  `kubectl apply` sends are honoured.
- JSON patch (RFC 6902, `application/json-patch+json`).
- Server-side apply (`application/apply-patch+yaml`, what Helm 4 uses): the applied
  configuration is merged like a strategic merge patch, and the fields each manager owns are
  tracked in `metadata.managedFields` (FieldsV1 notation: `f:spec`, `k:{"name":"web"}`), so
  that a field the same manager no longer applies is removed, and applying a field another
  manager changed is a 409 conflict unless `force=true`. The classic case it reproduces:
  after `kubectl scale` (or chartreuse) changed `.spec.replicas`, a non-forced apply of a
  different replica count conflicts.
"""
import copy
import json

# Lists merged by key in strategic merge patches and server-side apply (context-free
# approximation of the patchMergeKey tags of the Kubernetes API types).
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "env": "name", "volumes": "name", "volumeMounts": "mountPath",
    "volumeDevices": "devicePath", "imagePullSecrets": "name", "hostAliases": "ip",
    "conditions": "type", "ownerReferences": "uid", "resourceClaims": "name",
    "topologySpreadConstraints": "topologyKey", "readinessGates": "conditionType",
}
# Lists of scalars merged as sets.
SET_LISTS = {"finalizers"}


class PatchError(ValueError):
    """A patch that cannot be applied (answered 422 or 400)."""


class ApplyConflict(Exception):
    def __init__(self, conflicts):
        super().__init__("apply conflicts")
        # [(managedFields entry: manager, operation, apiVersion, time, subresource;
        #   ".spec.replicas")]
        self.conflicts = conflicts


def merge_key(field, items):
    if field == "ports":
        probe = next((i for i in items if isinstance(i, dict)), {})
        return "containerPort" if "containerPort" in probe else "port"
    return MERGE_KEYS.get(field)


# --- JSON merge patch -----------------------------------------------------------------

def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# --- strategic merge patch ------------------------------------------------------------

def strategic_merge(target, patch, field=None):
    """Apply a strategic merge patch `patch` to `target` (neither is modified)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys") or k.startswith("$setElementOrder/"):
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            name = k.split("/", 1)[1]
            if isinstance(out.get(name), list):
                out[name] = [x for x in out[name] if x not in (v or [])]
            continue
        if v is None:
            out.pop(k, None)
        elif isinstance(v, list):
            out[k] = _merge_list(out.get(k), v, k)
        elif isinstance(v, dict):
            merged = strategic_merge(out.get(k), v, k)
            if merged is None:
                out.pop(k, None)
            else:
                out[k] = merged
        else:
            out[k] = copy.deepcopy(v)
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    for k, order in patch.items():
        if k.startswith("$setElementOrder/") and isinstance(out.get(k.split("/", 1)[1]), list):
            _reorder(out, k.split("/", 1)[1], order)
    return out


def _merge_list(current, patch_list, field):
    current = current if isinstance(current, list) else []
    if field in SET_LISTS:
        out = list(current)
        for x in patch_list:
            if x not in out:
                out.append(copy.deepcopy(x))
        return out
    key = merge_key(field, patch_list + current)
    if not key or not all(isinstance(i, dict) for i in patch_list):
        return [copy.deepcopy(x) for x in patch_list
                if not (isinstance(x, dict) and x.get("$patch"))]
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch_list):
        return [copy.deepcopy(i) for i in patch_list if i.get("$patch") != "replace"]
    out = [copy.deepcopy(i) for i in current]
    for item in patch_list:
        idx = next((n for n, c in enumerate(out)
                    if isinstance(c, dict) and c.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                del out[idx]
            continue
        if idx is None:
            out.append(strategic_merge({}, item, field))
        else:
            out[idx] = strategic_merge(out[idx], item, field)
    return out


def _reorder(obj, field, order):
    items = obj[field]
    if not items or not isinstance(items[0], dict):
        rank = {json.dumps(v): n for n, v in enumerate(order)}
        obj[field] = sorted(items, key=lambda x: rank.get(json.dumps(x), len(rank)))
        return
    key = merge_key(field, items)
    if not key:
        return
    rank = {json.dumps(o.get(key)): n for n, o in enumerate(order) if isinstance(o, dict)}
    obj[field] = sorted(items, key=lambda x: rank.get(json.dumps(x.get(key)), len(rank)))


# --- JSON patch (RFC 6902) ------------------------------------------------------------

def _pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc, parts, path):
    cur = doc
    for p in parts:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            raise PatchError(f"doc is missing path: {path!r}")
    return cur


def json_patch(doc, ops):
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        kind, path = op.get("op"), op.get("path", "")
        parts = _pointer(path)
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"missing value for {kind} at {path!r}")
        if kind == "test":
            if _walk(doc, parts, path) != op["value"]:
                raise PatchError(f"test failed at {path!r}")
            continue
        if kind in ("move", "copy"):
            value = copy.deepcopy(_walk(doc, _pointer(op.get("from", "")), op.get("from")))
            if kind == "move":
                doc = json_patch(doc, [{"op": "remove", "path": op["from"]}])
            doc = json_patch(doc, [{"op": "add", "path": path, "value": value}])
            continue
        if not parts:
            if kind == "remove":
                raise PatchError("cannot remove the root")
            doc = copy.deepcopy(op["value"])
            continue
        parent = _walk(doc, parts[:-1], path)
        last = parts[-1]
        if isinstance(parent, dict):
            if kind == "add":
                parent[last] = copy.deepcopy(op["value"])
            elif kind == "replace":
                if last not in parent:
                    raise PatchError(f"replace operation does not apply: doc is missing key: "
                                     f"{path}")
                parent[last] = copy.deepcopy(op["value"])
            elif kind == "remove":
                if last not in parent:
                    raise PatchError(f"remove operation does not apply: doc is missing path: "
                                     f"{path}")
                del parent[last]
            else:
                raise PatchError(f"unknown JSON patch operation {kind!r}")
        elif isinstance(parent, list):
            if kind == "add":
                idx = len(parent) if last == "-" else int(last)
                if idx > len(parent):
                    raise PatchError(f"index out of range at {path!r}")
                parent.insert(idx, copy.deepcopy(op["value"]))
            elif kind in ("replace", "remove"):
                if not last.isdigit() or int(last) >= len(parent):
                    raise PatchError(f"index out of range at {path!r}")
                if kind == "replace":
                    parent[int(last)] = copy.deepcopy(op["value"])
                else:
                    del parent[int(last)]
            else:
                raise PatchError(f"unknown JSON patch operation {kind!r}")
        else:
            raise PatchError(f"doc is missing path: {path!r}")
    return doc


# --- field sets (server-side apply) ---------------------------------------------------

# Fields the server owns: never tracked, never removed by apply.
UNTRACKED_META = {"resourceVersion", "uid", "creationTimestamp", "generation", "managedFields",
                  "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "name",
                  "namespace"}


def _key_token(item, key):
    return "k:" + json.dumps({key: item.get(key)}, separators=(",", ":"), sort_keys=True)


def field_paths(obj, prefix=(), top=True):
    """Leaf paths of `obj` in FieldsV1 tokens: ('f:spec', 'f:replicas'),
    ('f:spec', 'f:template', ..., 'f:containers', 'k:{"name":"web"}', 'f:image')."""
    out = set()
    if not isinstance(obj, dict):
        return out
    for k, v in obj.items():
        if top and k in ("apiVersion", "kind", "status"):
            continue
        if prefix == ("f:metadata",) and k in UNTRACKED_META:
            continue
        p = prefix + (f"f:{k}",)
        if isinstance(v, dict) and v:
            out |= field_paths(v, p, top=False)
        elif isinstance(v, list) and v and merge_key(k, v) and \
                all(isinstance(i, dict) and merge_key(k, v) in i for i in v):
            key = merge_key(k, v)
            for item in v:
                ip = p + (_key_token(item, key),)
                sub = field_paths(item, ip, top=False)
                out |= sub or {ip}
        else:
            out.add(p)
    return out


def _resolve(obj, path):
    """(found, value) at a field path."""
    cur = obj
    for tok in path:
        if tok.startswith("f:"):
            if not isinstance(cur, dict) or tok[2:] not in cur:
                return False, None
            cur = cur[tok[2:]]
        else:
            want = json.loads(tok[2:])
            if not isinstance(cur, list):
                return False, None
            cur = next((i for i in cur if isinstance(i, dict) and
                        all(i.get(k) == v for k, v in want.items())), None)
            if cur is None:
                return False, None
    return True, cur


def remove_path(obj, path):
    """Remove a field path, then prune maps and keyed-list items it left empty."""
    parents = []
    cur = obj
    for tok in path[:-1]:
        parents.append((cur, tok))
        found, cur = _resolve(cur, (tok,))
        if not found:
            return
    last = path[-1]
    if last.startswith("f:"):
        if isinstance(cur, dict):
            cur.pop(last[2:], None)
    elif isinstance(cur, list):
        want = json.loads(last[2:])
        cur[:] = [i for i in cur if not all(i.get(k) == v for k, v in want.items())]
    # prune empties bottom-up
    child = cur
    for parent, tok in reversed(parents):
        empty = child in ({}, []) or (
            tok.startswith("k:") and isinstance(child, dict) and
            set(child) <= set(json.loads(tok[2:])))
        if not empty:
            break
        if tok.startswith("f:") and isinstance(parent, dict):
            parent.pop(tok[2:], None)
        elif isinstance(parent, list):
            parent.remove(child)
        child = parent


def changed_paths(old, new):
    """Leaf paths whose value is new or different in `new`."""
    out = set()
    for p in field_paths(new):
        found, val = _resolve(old, p)
        if not found or val != _resolve(new, p)[1]:
            out.add(p)
    return out


def fields_v1(paths):
    tree = {}
    for p in sorted(paths):
        node = tree
        for tok in p:
            node = node.setdefault(tok, {})
    # mark keyed-list items themselves as owned, like the API server does
    def mark(node):
        for k, v in node.items():
            if k.startswith("k:"):
                v.setdefault(".", {})
            mark(v)
    mark(tree)
    return tree


def paths_from_fields_v1(tree, prefix=()):
    out = set()
    for k, v in (tree or {}).items():
        if k == ".":
            continue
        p = prefix + (k,)
        children = {kk: vv for kk, vv in v.items() if kk != "."}
        if children:
            out |= paths_from_fields_v1(children, p)
        else:
            out.add(p)
    return out


def path_text(path):
    """`.spec.template.spec.containers[name="web"].image` for conflict messages."""
    out = ""
    for tok in path:
        if tok.startswith("f:"):
            out += "." + tok[2:]
        else:
            want = json.loads(tok[2:])
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in want.items()) + "]"
    return out


class ManagedFields:
    """Read and write the ownership records in `metadata.managedFields`."""

    def __init__(self, obj):
        self.entries = []
        for e in (obj.get("metadata") or {}).get("managedFields") or []:
            self.entries.append({
                "manager": e.get("manager", ""), "operation": e.get("operation", "Update"),
                "apiVersion": e.get("apiVersion", ""), "time": e.get("time"),
                "subresource": e.get("subresource", ""),
                "paths": paths_from_fields_v1(e.get("fieldsV1"))})

    def entry(self, manager, operation, api_version, subresource=""):
        for e in self.entries:
            if (e["manager"], e["operation"], e["subresource"]) == \
                    (manager, operation, subresource):
                e["apiVersion"] = api_version
                return e
        e = {"manager": manager, "operation": operation, "apiVersion": api_version,
             "time": None, "subresource": subresource, "paths": set()}
        self.entries.append(e)
        return e

    def record_update(self, old, new, manager, api_version, now, subresource=""):
        """After a create/update/patch by `manager`: it owns what it changed; fields that
        disappeared belong to nobody."""
        changed = changed_paths(old or {}, new)
        live = field_paths(new)
        for e in self.entries:
            e["paths"] = {p for p in e["paths"] if p in live} - changed
        if changed:
            e = self.entry(manager, "Update", api_version, subresource)
            e["paths"] |= changed
            e["time"] = now
        self.prune()

    def apply(self, live, applied, manager, api_version, now, force):
        """Server-side apply of `applied` over `live` (None when creating): returns the new
        object; raises ApplyConflict."""
        new_paths = field_paths(applied)
        base = live or {}
        # A field another manager owns conflicts when this apply changes its value; one it
        # leaves as it is becomes shared. Forcing takes the conflicting fields only.
        conflicts = []
        for e in self.entries:
            # a manager is identified by name *and* operation (and subresource), as in the
            # API server: "kubectl" Update (kubectl scale) and "kubectl" Apply differ
            if (e["manager"], e["operation"], e["subresource"]) == (manager, "Apply", ""):
                continue
            for p in sorted(e["paths"] & new_paths):
                if _resolve(base, p) != _resolve(applied, p):
                    conflicts.append((e, p))
        if conflicts and not force:
            raise ApplyConflict([(dict(e), path_text(p)) for e, p in conflicts])
        for e, p in conflicts:
            e["paths"].discard(p)
        mine = self.entry(manager, "Apply", api_version)
        result = strategic_merge(base, applied)
        others = set()
        for e in self.entries:
            if e is not mine:
                others |= e["paths"]
        for p in sorted(mine["paths"] - new_paths - others, key=len, reverse=True):
            remove_path(result, p)
        mine["paths"] = new_paths
        mine["time"] = now
        self.prune()
        return result

    def prune(self):
        self.entries = [e for e in self.entries if e["paths"]]

    def render(self):
        out = []
        for e in self.entries:
            d = {"manager": e["manager"], "operation": e["operation"],
                 "apiVersion": e["apiVersion"], "time": e["time"], "fieldsType": "FieldsV1",
                 "fieldsV1": fields_v1(e["paths"])}
            if e["subresource"]:
                d["subresource"] = e["subresource"]
            out.append(d)
        return out
