"""Label and field selectors, parsed the way the API server parses the `labelSelector` and
`fieldSelector` query parameters.

Why a real parser: the client under test builds selector strings itself (the release is
found by `app.kubernetes.io/instance=<release>` *or* `release=<release>`, a Deployment's Pods
by its `spec.selector`), and a simulator that accepts anything would hide a malformed
selector that a real cluster rejects with 400. Unsupported field labels are rejected the
same way the API server rejects them.
"""
import re


class SelectorError(ValueError):
    """A selector the API server would refuse (answered with 400 BadRequest)."""


# A label key: optional DNS-subdomain prefix and a name of up to 63 characters.
_KEY = r"(?:[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_KEY_RE = re.compile(_KEY)
_VALUE_RE = re.compile(_VALUE)


def _split_top(text):
    """Split on commas that are not inside parentheses (`a in (x,y),b` -> 2 parts)."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError(f"unbalanced parenthesis in {text!r}")
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth:
        raise SelectorError(f"unbalanced parenthesis in {text!r}")
    parts.append("".join(cur))
    return parts


class Requirement:
    """One term of a label selector: key, operator (=, !=, in, notin, exists, !) and values."""

    def __init__(self, key, op, values=()):
        self.key, self.op, self.values = key, op, tuple(values)

    def matches(self, labels):
        has = self.key in labels
        val = labels.get(self.key)
        if self.op == "=":
            return has and val == self.values[0]
        if self.op == "!=":
            return not has or val != self.values[0]
        if self.op == "in":
            return has and val in self.values
        if self.op == "notin":
            return not has or val not in self.values
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        raise AssertionError(self.op)

    def __repr__(self):
        return f"Requirement({self.key!r}, {self.op!r}, {self.values!r})"


def _check_key(key, whole):
    if not _KEY_RE.fullmatch(key) or len(key.rsplit("/", 1)[-1]) > 63:
        raise SelectorError(f"unable to parse requirement: invalid label key {key!r} "
                            f"in {whole!r}")


def _check_value(value, whole):
    if not _VALUE_RE.fullmatch(value) or len(value) > 63:
        raise SelectorError(f"unable to parse requirement: invalid label value {value!r} "
                            f"in {whole!r}")


class LabelSelector:
    """A parsed label selector; the empty selector matches everything."""

    def __init__(self, requirements=()):
        self.requirements = list(requirements)

    @classmethod
    def parse(cls, text):
        text = (text or "").strip()
        reqs = []
        if not text:
            return cls(reqs)
        for part in _split_top(text):
            part = part.strip()
            if not part:
                raise SelectorError(f"found ',', expected: identifier in {text!r}")
            m = re.fullmatch(r"(\S+?)\s+(in|notin)\s*\((.*)\)", part)
            if m:
                key, op, vals = m.group(1), m.group(2), m.group(3)
                _check_key(key, text)
                values = [v.strip() for v in vals.split(",")]
                for v in values:
                    _check_value(v, text)
                reqs.append(Requirement(key, op, values))
                continue
            m = re.fullmatch(r"([^=!\s]+)\s*(==|=|!=)\s*(\S*)", part)
            if m:
                key, op, value = m.group(1), m.group(2), m.group(3)
                _check_key(key, text)
                _check_value(value, text)
                reqs.append(Requirement(key, "!=" if op == "!=" else "=", [value]))
                continue
            m = re.fullmatch(r"!\s*(\S+)", part)
            if m:
                _check_key(m.group(1), text)
                reqs.append(Requirement(m.group(1), "!"))
                continue
            if re.fullmatch(r"\S+", part):
                _check_key(part, text)
                reqs.append(Requirement(part, "exists"))
                continue
            raise SelectorError(f"unable to parse requirement: {part!r} in {text!r}")
        return cls(reqs)

    @classmethod
    def from_spec(cls, selector):
        """From a `metav1.LabelSelector` object (matchLabels + matchExpressions)."""
        reqs = []
        selector = selector or {}
        for k, v in sorted((selector.get("matchLabels") or {}).items()):
            reqs.append(Requirement(k, "=", [str(v)]))
        for e in selector.get("matchExpressions") or []:
            op = {"In": "in", "NotIn": "notin", "Exists": "exists",
                  "DoesNotExist": "!"}.get(e.get("operator"))
            if op is None:
                raise SelectorError(f"{e.get('operator')!r} is not a valid selector operator")
            reqs.append(Requirement(e["key"], op, e.get("values") or ()))
        return cls(reqs)

    def matches(self, labels):
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def empty(self):
        return not self.requirements

    def __str__(self):
        out = []
        for r in self.requirements:
            if r.op in ("=", "!="):
                out.append(f"{r.key}{r.op}{r.values[0]}")
            elif r.op in ("in", "notin"):
                out.append(f"{r.key} {r.op} ({','.join(r.values)})")
            elif r.op == "exists":
                out.append(r.key)
            else:
                out.append(f"!{r.key}")
        return ",".join(out)


def selector_string(selector):
    """The string form the API server puts in a Scale's `status.selector`."""
    return str(LabelSelector.from_spec(selector))


# Field labels the API server accepts, per resource (group, plural); metadata.name and
# metadata.namespace are accepted for every resource.
FIELD_LABELS = {
    ("", "pods"): {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                   "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
                   "status.podIP", "status.nominatedNodeName"},
    ("", "secrets"): {"type"},
    ("", "events"): {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                     "involvedObject.uid", "involvedObject.apiVersion",
                     "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
                     "reportingComponent", "source", "type"},
    ("", "namespaces"): {"status.phase"},
    ("", "nodes"): {"spec.unschedulable"},
    ("apps", "replicasets"): {"status.replicas"},
    ("batch", "jobs"): {"status.successful"},
}


def _field_value(obj, label):
    cur = obj
    for part in label.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


class FieldSelector:
    """A parsed field selector: terms `label=value`, `label==value`, `label!=value`."""

    def __init__(self, terms=()):
        self.terms = list(terms)

    @classmethod
    def parse(cls, text, group="", plural=""):
        text = (text or "").strip()
        terms = []
        if not text:
            return cls(terms)
        allowed = {"metadata.name", "metadata.namespace"} | FIELD_LABELS.get((group, plural),
                                                                            set())
        for part in text.split(","):
            m = re.fullmatch(r"\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*", part)
            if not m:
                raise SelectorError(f"invalid selector: {text!r}; can't understand {part!r}")
            label, op, value = m.groups()
            if label not in allowed:
                kind = plural or "resource"
                raise SelectorError(f'field label not supported: {label} (for {kind})')
            terms.append((label, "!=" if op == "!=" else "=", value))
        return cls(terms)

    def matches(self, obj):
        for label, op, value in self.terms:
            actual = _field_value(obj, label)
            if (actual == value) != (op == "="):
                return False
        return True

    def name(self):
        """The single name this selector pins (metadata.name=x), or None."""
        for label, op, value in self.terms:
            if label == "metadata.name" and op == "=":
                return value
        return None
