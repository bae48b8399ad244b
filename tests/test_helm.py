"""The real Helm 3.17 and Helm 4.1: plugin install from the repository directory,
`helm chartreuse version`, and `helm template` of the example chart through the
post-renderer, plain and through the wrapper, in every mode."""
import os
import subprocess

import pytest
import yaml

from conftest import EXAMPLE_CHART, REPO, helm_path, plugin_source
from schemas import assert_valid_objects

pytestmark = pytest.mark.helm

RELEASE = "shop"
NAMESPACE = "billing"


class Helm:
    def __init__(self, major, home):
        self.major = major
        self.bin = helm_path(major)
        self.env = dict(os.environ)
        for var in ("HELM_DATA_HOME", "HELM_CONFIG_HOME", "HELM_CACHE_HOME"):
            path = home / var.lower()
            path.mkdir(parents=True, exist_ok=True)
            self.env[var] = str(path)
        self.env.pop("HELM_PLUGINS", None)
        self.env.pop("HELM_BIN", None)

    def run(self, *args, check=True):
        p = subprocess.run([self.bin, *args], capture_output=True, text=True, env=self.env,
                           timeout=300)
        if check:
            assert p.returncode == 0, f"helm {' '.join(args)}:\n{p.stdout}\n{p.stderr}"
        return p

    def plugins_dir(self):
        return self.run("env", "HELM_PLUGINS").stdout.strip()

    def post_renderer_args(self):
        """The plain --post-renderer form each major needs (README documents these)."""
        if self.major == 3:
            exe = os.path.join(self.plugins_dir(), REPO.name, "bin", "chartreuse")
            return ["--post-renderer", exe, "--post-renderer-args", "post-render"]
        return ["--post-renderer", "chartreuse-post-render"]


@pytest.fixture(scope="module", params=[3, 4], ids=["helm3", "helm4"])
def helm(request, tmp_path_factory):
    h = Helm(request.param, tmp_path_factory.mktemp(f"helm{request.param}"))
    h.run("plugin", "install", str(plugin_source()))
    return h


def docs(text):
    return [d for d in yaml.safe_load_all(text) if d is not None]


def ours(all_docs):
    return [d for d in all_docs
            if d["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "chartreuse"]


def chart_docs(all_docs):
    return [d for d in all_docs if d not in ours(all_docs)]


def template(helm, *extra, wrapper=False, values=None):
    args = ["template", RELEASE, str(EXAMPLE_CHART), "--namespace", NAMESPACE]
    if values:
        args += ["-f", str(EXAMPLE_CHART / values)]
    if wrapper:
        return helm.run("chartreuse", *args, *extra).stdout
    pr = helm.post_renderer_args() + ["--post-renderer-args", f"--release={RELEASE}",
                                      "--post-renderer-args", f"--namespace={NAMESPACE}"]
    return helm.run(*args, *pr, *extra).stdout


def plain(helm, values=None):
    args = ["template", RELEASE, str(EXAMPLE_CHART), "--namespace", NAMESPACE]
    if values:
        args += ["-f", str(EXAMPLE_CHART / values)]
    return helm.run(*args).stdout


def by_name(objs, kind):
    return {d["metadata"]["name"]: d for d in objs if d["kind"] == kind}


def test_plugins_are_installed(helm):
    listed = helm.run("plugin", "list").stdout
    assert "chartreuse" in listed
    if helm.major == 4:
        assert "chartreuse-post-render" in listed


def test_helm_chartreuse_version(helm):
    out = helm.run("chartreuse", "version").stdout
    assert out.strip() == "chartreuse " + (REPO / "VERSION").read_text().strip()


@pytest.mark.parametrize("wrapper", [False, True], ids=["post-renderer", "wrapper"])
def test_after_deployment_mode(helm, wrapper):
    out = template(helm, wrapper=wrapper)
    all_docs = docs(out)
    base = docs(plain(helm))
    # The chart's objects come out unchanged; the config document is consumed.
    expected = [d for d in base if d["kind"] != "ChartreuseConfig"]
    assert sorted(map(repr, chart_docs(all_docs))) == sorted(map(repr, expected))
    assert not any(d["kind"] == "ChartreuseConfig" for d in all_docs)
    mine = ours(all_docs)
    assert sorted(d["kind"] for d in mine) == \
        ["ConfigMap", "Job", "Role", "RoleBinding", "Secret", "ServiceAccount"]
    job = by_name(mine, "Job")[f"{RELEASE}-chartreuse-upgrade"]
    ann = job["metadata"]["annotations"]
    assert ann["helm.sh/hook"] == "post-install,post-upgrade"
    assert ann["helm.sh/hook-weight"] == "1"
    assert ann["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    assert job["metadata"]["namespace"] == NAMESPACE
    pod = job["spec"]["template"]["spec"]
    main = pod["containers"][0]
    app_version = yaml.safe_load((EXAMPLE_CHART / "Chart.yaml").read_text())["appVersion"]
    assert main["image"] == f"registry.example.com/acme/billing:{app_version}"
    env = {e["name"]: e for e in main["env"]}
    assert env["CHARTREUSE_DB_0_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == \
        [d for d in expected if d["kind"] == "Secret"][0]["metadata"]["name"]
    assert [c["name"] for c in pod["initContainers"]] == ["chartreuse-binary",
                                                           "wait-postgres-main"]
    for d in mine:
        assert d["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE


def test_input_documents_are_byte_identical_through_helm3(helm):
    if helm.major != 3:
        pytest.skip("Helm 4 re-sorts post-rendered documents and adds # Source lines")
    out = template(helm)
    raw = plain(helm)
    cut = raw.index("---\n# Source: demo/templates/chartreuse.yaml")
    nxt = raw.find("---\n", cut + 4)
    expected = raw[:cut] + (raw[nxt:] if nxt >= 0 else "")
    assert out.startswith(expected)


@pytest.mark.parametrize("wrapper", [False, True], ids=["post-renderer", "wrapper"])
def test_before_deployment_mode(helm, wrapper):
    mine = ours(docs(template(helm, values="values-before.yaml", wrapper=wrapper)))
    jobs = by_name(mine, "Job")
    hooks = {n: j["metadata"]["annotations"]["helm.sh/hook"] for n, j in jobs.items()}
    assert hooks == {f"{RELEASE}-chartreuse-upgrade": "pre-upgrade",
                     f"{RELEASE}-chartreuse-install": "post-install",
                     f"{RELEASE}-chartreuse-restore": "post-upgrade"}
    restore = jobs[f"{RELEASE}-chartreuse-restore"]["spec"]["template"]["spec"]
    assert restore["containers"][0]["args"] == ["--release", RELEASE, "--namespace", NAMESPACE]


def test_argocd_mode(helm):
    mine = ours(docs(template(helm, "--post-renderer-args", "--set=deploymentMethod=argocd")))
    job = by_name(mine, "Job")[f"{RELEASE}-chartreuse-upgrade"]
    ann = job["metadata"]["annotations"]
    assert ann["argocd.argoproj.io/hook"] == "Sync"
    assert ann["argocd.argoproj.io/sync-wave"] == "-50"
    assert ann["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
    sa = by_name(mine, "ServiceAccount")[f"{RELEASE}-chartreuse"]
    assert sa["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "-51"


def test_several_databases_with_elasticsearch(helm):
    mine = ours(docs(template(helm, values="values-multi.yaml", wrapper=True)))
    pod = by_name(mine, "Job")[f"{RELEASE}-chartreuse-upgrade"]["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == \
        ["chartreuse-binary", "wait-postgres-main", "wait-postgres-reporting",
         "wait-elasticsearch"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["CHARTREUSE_DB_1_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == \
        "reporting-password"
    cm = yaml.safe_load(by_name(mine, "ConfigMap")[f"{RELEASE}-chartreuse"]["data"]["config.yaml"])
    assert cm["databases"][1]["additionalParameters"] == "-x env=production"
    assert cm["databases"][1]["allowMigrationFromEmptyDatabase"] is False
    assert cm["eslembic"]["migrate"] is True


def test_elasticsearch_off(helm):
    pod = by_name(ours(docs(template(helm))), "Job")[f"{RELEASE}-chartreuse-upgrade"]
    names = [c["name"] for c in pod["spec"]["template"]["spec"]["initContainers"]]
    assert "wait-elasticsearch" not in names


def test_post_renderer_failure_fails_helm(helm):
    p = helm.run("template", RELEASE, str(EXAMPLE_CHART), "--namespace", NAMESPACE,
                 *helm.post_renderer_args(), "--post-renderer-args", "--set=stopPods=maybe",
                 check=False)
    assert p.returncode != 0
    assert "kind: Deployment" not in p.stdout


def test_wrapper_shows_the_post_renderer_error(helm):
    p = helm.run("chartreuse", "template", RELEASE, str(EXAMPLE_CHART), "--namespace",
                 NAMESPACE, "--chartreuse-set", "stopPods=maybe", check=False)
    assert p.returncode != 0
    assert "--set stopPods=maybe: stopPods expects true or false" in p.stderr
    assert "kind: Deployment" not in p.stdout


@pytest.mark.parametrize("values,extra,wrapper", [
    (None, (), False),
    (None, (), True),
    ("values-before.yaml", (), False),
    ("values-before.yaml", (), True),
    (None, ("--post-renderer-args", "--set=deploymentMethod=argocd"), False),
    ("values-before.yaml", ("--post-renderer-args", "--set=deploymentMethod=argocd"), False),
    ("values-multi.yaml", (), True),
], ids=["after", "after-wrapper", "before", "before-wrapper", "argocd", "argocd-before",
        "multi-eslembic-wrapper"])
def test_injected_objects_are_valid_kubernetes_objects(helm, values, extra, wrapper):
    """What comes out of Helm, after its own handling of a post-renderer's documents, is
    what the API server takes (tests/schemas.py)."""
    mine = ours(docs(template(helm, *extra, wrapper=wrapper, values=values)))
    assert {d["kind"] for d in mine} >= {"Job", "ConfigMap", "Secret"}
    assert_valid_objects(mine)
