"""RBAC authorisation of ServiceAccount requests, as the API server's RBAC authorizer does.

A request made with a ServiceAccount token (user `system:serviceaccount:NS:NAME`, groups
system:serviceaccounts, system:serviceaccounts:NS, system:authenticated) is allowed when a
RoleBinding of the request's namespace, or a ClusterRoleBinding, binds that user or one of
its groups to a Role/ClusterRole with a rule matching the request's apiGroup, resource
(`resource/subresource`), verb and resourceNames; otherwise 403 Forbidden with the real
message. Other users (the test admin token, client certificates) are cluster-admin here.

What every authenticated user has in a real cluster (system:discovery, system:basic-user):
the discovery and health paths, and creating SelfSubjectAccessReviews and
SelfSubjectRulesReviews.
"""
from .api import ApiError

SA_PREFIX = "system:serviceaccount:"
RBAC = "rbac.authorization.k8s.io"
NONRESOURCE_ALLOWED = ("/api", "/apis", "/version", "/healthz", "/livez", "/readyz",
                       "/openapi")
SELF_REVIEWS = {("authorization.k8s.io", "selfsubjectaccessreviews"),
                ("authorization.k8s.io", "selfsubjectrulesreviews")}


def is_service_account(user):
    return bool(user) and user.startswith(SA_PREFIX) and user.count(":") == 3


def groups_of(user):
    ns = user.split(":")[2]
    return ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]


class Attributes:
    """What the authorizer decides on (the API server's RequestInfo)."""

    def __init__(self, verb, group="", resource="", subresource="", namespace="", name="",
                 path="", resource_request=True):
        self.verb, self.group, self.resource = verb, group, resource
        self.subresource, self.namespace, self.name = subresource, namespace, name
        self.path, self.resource_request = path, resource_request

    @property
    def full_resource(self):
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def request_attributes(method, path, query):
    """The request's verb and resource, parsed from its path as the API server does."""
    parts = [p for p in path.split("/") if p]
    if not parts or parts[0] not in ("api", "apis") or \
            (parts[0] == "api" and len(parts) < 3) or (parts[0] == "apis" and len(parts) < 4):
        verb = {"GET": "get", "HEAD": "get", "POST": "post", "PUT": "put",
                "PATCH": "patch", "DELETE": "delete"}.get(method, method.lower())
        return Attributes(verb, path=path, resource_request=False)
    group, rest = ("", parts[2:]) if parts[0] == "api" else (parts[1], parts[3:])
    watch_path = bool(rest) and rest[0] == "watch"
    if watch_path:
        rest = rest[1:]
    ns = ""
    if len(rest) >= 2 and rest[0] == "namespaces" and (len(rest) == 2 or rest[2] not in
                                                       ("status", "finalize")):
        if len(rest) == 2:  # the Namespace object itself
            rest = ["namespaces", rest[1]]
        else:
            ns, rest = rest[1], rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if method in ("GET", "HEAD"):
        if watch_path or query.get("watch") in ("1", "true"):
            verb = "watch"
        else:
            verb = "get" if name else "list"
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete" if name else "deletecollection"}.get(method, method.lower())
    return Attributes(verb, group, resource, sub, ns, name, path)


def _matches(values, wanted):
    return "*" in values or wanted in values


def rule_allows(rule, a):
    if not a.resource_request:
        urls = rule.get("nonResourceURLs") or []
        return _matches(rule.get("verbs") or [], a.verb) and any(
            u == a.path or u == "*" or (u.endswith("*") and a.path.startswith(u[:-1]))
            for u in urls)
    if not _matches(rule.get("verbs") or [], a.verb):
        return False
    if not _matches(rule.get("apiGroups") or [], a.group):
        return False
    resources = rule.get("resources") or []
    if not ("*" in resources or a.full_resource in resources or
            (a.subresource and f"*/{a.subresource}" in resources)):
        return False
    names = rule.get("resourceNames") or []
    return not names or a.name in names


def _binds(binding, user, groups):
    for s in binding.get("subjects") or []:
        kind, name = s.get("kind"), s.get("name")
        if kind == "ServiceAccount" and user == f"{SA_PREFIX}{s.get('namespace', '')}:{name}":
            return True
        if kind == "User" and name == user:
            return True
        if kind == "Group" and name in groups:
            return True
    return False


class Authorizer:
    def __init__(self, store):
        self.store = store

    def _role_rules(self, ref, namespace):
        kind, name = ref.get("kind"), ref.get("name")
        if ref.get("apiGroup", RBAC) != RBAC:
            return []
        if kind == "Role":
            role = self.store.get(RBAC, "roles", namespace, name) if namespace else None
        elif kind == "ClusterRole":
            role = self.store.get(RBAC, "clusterroles", "", name)
        else:
            role = None
        return (role or {}).get("rules") or []

    def rules_for(self, user, namespace):
        """Every rule granted to user in namespace (its ClusterRoleBindings' too)."""
        groups = groups_of(user)
        rules = []
        with self.store.lock:
            for b in self.store.list(RBAC, "clusterrolebindings"):
                if _binds(b, user, groups):
                    rules += self._role_rules(b.get("roleRef") or {}, "")
            if namespace:
                for b in self.store.list(RBAC, "rolebindings", namespace):
                    if _binds(b, user, groups):
                        rules += self._role_rules(b.get("roleRef") or {}, namespace)
        return rules

    def allowed(self, user, a):
        if not is_service_account(user):
            return True  # the admin token, client certificates: cluster-admin
        if not a.resource_request:
            if any(a.path == p or a.path.startswith(p + "/") for p in NONRESOURCE_ALLOWED):
                return a.verb == "get"
        elif (a.group, a.resource) in SELF_REVIEWS and a.verb == "create":
            return True
        return any(rule_allows(r, a) for r in self.rules_for(user, a.namespace))

    def check(self, user, a):
        """Raises the API server's 403 when user may not do a."""
        if self.allowed(user, a):
            return
        raise forbidden(user, a)


def forbidden(user, a):
    if not a.resource_request:
        raise ApiError(403, "Forbidden",
                       f'forbidden: User "{user}" cannot {a.verb} path "{a.path}"', {})
    what = f"{a.resource}.{a.group}" if a.group else a.resource
    if a.name:
        what += f' "{a.name}"'
    where = f'in the namespace "{a.namespace}"' if a.namespace else "at the cluster scope"
    details = {"group": a.group, "kind": a.resource}
    if a.name:
        details["name"] = a.name
    return ApiError(403, "Forbidden",
                    f'{what} is forbidden: User "{user}" cannot {a.verb} resource '
                    f'"{a.full_resource}" in API group "{a.group}" {where}', details)


def self_subject_access_review(authorizer, user, body):
    """The answer to POST selfsubjectaccessreviews: the review with status.allowed."""
    spec = (body or {}).get("spec") or {}
    ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if ra:
        a = Attributes(ra.get("verb", ""), ra.get("group", ""), ra.get("resource", ""),
                       ra.get("subresource", ""), ra.get("namespace", ""), ra.get("name", ""))
    elif nra:
        a = Attributes(nra.get("verb", ""), path=nra.get("path", ""), resource_request=False)
    else:
        raise ApiError(422, "Invalid", 'SelfSubjectAccessReview.authorization.k8s.io "" is '
                       'invalid: spec.resourceAttributes: Invalid value: "null": exactly one '
                       'of nonResourceAttributes or resourceAttributes must be specified')
    ok = authorizer.allowed(user, a)
    status = {"allowed": ok}
    if ok and is_service_account(user):
        status["reason"] = "RBAC: allowed by a RoleBinding or ClusterRoleBinding"
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}
