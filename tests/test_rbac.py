"""Least privilege: the Role chartreuse injects grants exactly what the enabled features
call (STOP_PODS, ESLEMBIC, FOLLOW_UP below, src/access.c's table; the tests that run migrate and restore as the
Job's ServiceAccount, tests/rbac_helpers.py, show that nothing is missing), it is a
namespaced Role (nothing cluster-wide anywhere in the output), and its RoleBinding binds
only the ServiceAccount the migration Job runs as."""
import pytest
import yaml

from conftest import post_render

MANIFESTS = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo-web
  labels: {app.kubernetes.io/instance: demo}
spec:
  template:
    spec:
      containers: [{name: web, image: "registry.example.com/demo:1.0"}]
"""

# The Role per feature: what the Job's commands call when that feature is on (src/access.c's
# RULES), and nothing else. The scale subresource has no list (a subresource is read
# one object at a time); HPAs are read by listing with a name field selector.
STOP_PODS = {  # migrate stops and starts the release's Deployments; restore starts them
    ("wiremind.io", "expecteddeploymentscales"): {"list"},
    ("apps", "deployments"): {"get", "patch"},
    ("apps", "deployments/scale"): {"get", "patch"},
    ("autoscaling", "horizontalpodautoscalers"): {"list", "patch"},
    ("", "pods"): {"list", "watch"},
    ("", "events"): {"create"},  # Events on the Job's Pod and the ExpectedDeploymentScales
}
ESLEMBIC = {("batch", "jobs"): {"get"}}  # is an earlier follow-up Job still running?
FOLLOW_UP = {("batch", "jobs"): {"create", "delete"},  # eslembic.migrate / cleanIndex
             ("", "secrets"): {"create"}}


def role_for(stop_pods=True, eslembic=False, follow_up=False):
    """The union of the features' rules: the Role a configuration must get, exactly."""
    granted = {}
    for on, rules in ((stop_pods, STOP_PODS), (eslembic, ESLEMBIC), (follow_up, FOLLOW_UP)):
        for key, verbs in (rules.items() if on else ()):
            granted.setdefault(key, set()).update(verbs)
    return granted


BASE = role_for()

DB = ["--set", "image.repository=registry.example.com/demo", "--set", "databases[0].host=db",
      "--set", "databases[0].user=app", "--set", "databases[0].database=app"]
ES = ["--set", "eslembic.url=http://es:9200"]

CASES = {
    "default": (DB, role_for()),
    "before-deployment": (DB + ["--set", "upgradeBeforeDeployment=true"], role_for()),
    "argocd": (DB + ["--set", "deploymentMethod=argocd"], role_for()),
    "no-stop-pods": (DB + ["--set", "stopPods=false"], role_for(stop_pods=False)),
    "no-stop-pods-before": (DB + ["--set", "stopPods=false", "--set",
                                  "upgradeBeforeDeployment=true"], role_for(stop_pods=False)),
    "eslembic-upgrade-only": (DB + ES, role_for(eslembic=True)),
    "eslembic-migrate": (DB + ES + ["--set", "eslembic.migrate=true"],
                         role_for(eslembic=True, follow_up=True)),
    "eslembic-clean": (DB + ES + ["--set", "eslembic.cleanIndex=true"],
                       role_for(eslembic=True, follow_up=True)),
    "eslembic-alone-migrate": (["--set", "image.repository=r"] + ES +
                               ["--set", "eslembic.migrate=true"],
                               role_for(eslembic=True, follow_up=True)),
    "eslembic-no-stop-pods": (DB + ES + ["--set", "eslembic.migrate=true", "--set",
                                         "stopPods=false"],
                              role_for(stop_pods=False, eslembic=True, follow_up=True)),
    "existing-service-account": (DB + ["--set", "serviceAccount.create=false",
                                       "--set", "serviceAccount.name=existing-sa"], role_for()),
}


def render(*args):
    r = post_render(MANIFESTS, "--release", "demo", "--namespace", "prod", *args)
    assert r.rc == 0, r.err.decode()
    return r.docs()


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def rules_of(role):
    granted = {}
    for rule in role["rules"]:
        assert set(rule) <= {"apiGroups", "resources", "verbs"}, rule  # no resourceNames,
        for group in rule["apiGroups"]:                               # no nonResourceURLs
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    return granted


def assert_nothing_cluster_wide(docs):
    kinds = {d.get("kind") for d in docs}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}, kinds


@pytest.mark.parametrize("case", CASES)
def test_the_role_grants_exactly_what_the_job_needs(case):
    args, expected = CASES[case]
    docs = render(*args)
    assert_nothing_cluster_wide(docs)
    roles, bindings = by_kind(docs, "Role"), by_kind(docs, "RoleBinding")
    assert len(roles) == 1 and len(bindings) == 1
    role, binding = roles[0], bindings[0]
    assert role["apiVersion"] == "rbac.authorization.k8s.io/v1"
    assert role["metadata"]["namespace"] == "prod"
    granted = rules_of(role)
    assert granted == expected
    for verbs in granted.values():
        assert "*" not in verbs
    assert "*" not in {g for g, _ in granted} | {r for _, r in granted}

    # The binding: to this Role, for the one ServiceAccount the Job runs as.
    assert binding["metadata"]["namespace"] == "prod"
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    jobs = by_kind(docs, "Job")
    accounts = {j["spec"]["template"]["spec"]["serviceAccountName"] for j in jobs}
    assert len(accounts) == 1, accounts
    account = accounts.pop()
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account,
                                    "namespace": "prod"}]
    sas = by_kind(docs, "ServiceAccount")
    if case == "existing-service-account":
        assert account == "existing-sa" and sas == []
    else:
        assert [s["metadata"]["name"] for s in sas] == [account]
        assert sas[0]["metadata"]["namespace"] == "prod"


def test_no_rbac_when_rbac_create_is_off():
    docs = render(*DB, "--set", "rbac.create=false")
    assert_nothing_cluster_wide(docs)
    assert by_kind(docs, "Role") == [] and by_kind(docs, "RoleBinding") == []


def test_two_migrations_each_bind_their_own_account():
    chart = "".join(
        "---\n" + yaml.safe_dump({
            "apiVersion": "chartreuse.wiremind.io/v1", "kind": "ChartreuseConfig",
            "metadata": {"name": name},
            "image": {"repository": "registry.example.com/demo"},
            "databases": [{"host": "db", "user": "app", "database": name}]})
        for name in ("first", "second"))
    r = post_render(MANIFESTS + chart, "--release", "demo", "--namespace", "prod")
    assert r.rc == 0, r.err.decode()
    docs = r.docs()
    assert_nothing_cluster_wide(docs)
    roles, bindings = by_kind(docs, "Role"), by_kind(docs, "RoleBinding")
    assert len(roles) == 2 and len(bindings) == 2
    for role, binding in zip(roles, bindings):
        assert rules_of(role) == BASE
        assert binding["roleRef"]["name"] == role["metadata"]["name"]
        assert len(binding["subjects"]) == 1
    assert len({b["subjects"][0]["name"] for b in bindings}) == 2
