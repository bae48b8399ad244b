"""Running `chartreuse migrate`/`restore` as the migration Job's ServiceAccount: the Role and
RoleBinding the real post-renderer injects for the test's settings are loaded in the
simulator, which enforces them (tests/k8s_sim/rbac.py), so a missing permission is a 403
in the test and an excess one fails tests/test_rbac.py's exact table."""
from pathlib import Path

import yaml

from conftest import post_render

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: rbac-probe}
spec:
  template:
    spec:
      containers: [{name: app, image: "registry.example.com/app:1"}]
"""

# The settings that decide the Role (src/render.c's ROLE_RULES), copied from the Job's config.
ROLE_SETTINGS = ("stopPods",)
ESLEMBIC_SETTINGS = ("migrate", "cleanIndex")


def role_objects(settings, release, namespace, account=None):
    """The ServiceAccount, Role and RoleBinding post-render injects for these settings
    (account: an existing ServiceAccount of that name, serviceAccount.name)."""
    args = ["--release", release, "--namespace", namespace,
            "--set", "image.repository=registry.example.com/app",
            "--set", "databases[0].host=db", "--set", "databases[0].user=app",
            "--set", "databases[0].database=app"]
    for key in ROLE_SETTINGS:
        if key in settings:
            args += ["--set", f"{key}={str(bool(settings[key])).lower()}"]
    es = settings.get("eslembic")
    if es:
        args += ["--set", "eslembic.url=http://es:9200"]  # the Job gets it from its Secret
        for key in ESLEMBIC_SETTINGS:
            if key in es:
                args += ["--set", f"eslembic.{key}={str(bool(es[key])).lower()}"]
    if account:
        args += ["--set", "serviceAccount.create=false", "--set", f"serviceAccount.name={account}"]
    r = post_render(MANIFEST, *args)
    assert r.rc == 0, r.err.decode()
    return [d for d in r.docs() if d["kind"] in ("ServiceAccount", "Role", "RoleBinding")]


def load_role(k8s, settings, release, namespace="default", account=None):
    """Puts the injected ServiceAccount, Role and RoleBinding for settings in the simulator
    (replacing earlier ones); returns the ServiceAccount's name."""
    bound = None
    for obj in role_objects(settings, release, namespace, account):
        k8s.put(obj)
        if obj["kind"] == "RoleBinding":
            bound = obj["subjects"][0]["name"]
    assert bound, "post-render injected no RoleBinding"
    return bound


def job_kubeconfig(k8s, path, settings, release=None, namespace=None):
    """Loads the Role for settings (a dict, or the path of the Job's config.yaml) into the
    simulator, replacing an earlier one, and writes at path a kubeconfig with a token of the
    Job's ServiceAccount. Returns path."""
    if not isinstance(settings, dict):
        settings = yaml.safe_load(Path(settings).read_text()) or {}
    release = release or settings.get("release") or "release"
    namespace = namespace or settings.get("namespace") or "default"
    account = load_role(k8s, settings, release, namespace)
    token = f"job-token-{namespace}-{account}"
    k8s.add_token(token, f"system:serviceaccount:{namespace}:{account}")
    return k8s.kubeconfig(path, token=token, namespace=namespace)


def forbidden(k8s):
    """The requests the simulator refused for RBAC: [] when the Role sufficed."""
    return [str(r) for r in k8s.request_log if r.denied]
