"""deploy/argocd/plugin.yaml, the Argo CD Config Management Plugin: its init and generate
commands run as the CMP sidecar runs them (`command` + `args`, `sh -c`, cwd the
Application's path, ARGOCD_APP_* and ARGOCD_ENV_* set), with the real Helm 3 and the
chartreuse plugin installed from this repository."""
import os
import shutil
import subprocess

import pytest
import yaml

from conftest import EXAMPLE_CHART, REPO, helm_path, plugin_source
from schemas import assert_valid_objects

pytestmark = pytest.mark.helm

PLUGIN = yaml.safe_load((REPO / "deploy" / "argocd" / "plugin.yaml").read_text())
APP, NAMESPACE = "billing-api", "billing"


@pytest.fixture(scope="module")
def sidecar_env(tmp_path_factory):
    """The sidecar's environment: Helm 3 on PATH with the chartreuse plugin installed."""
    home = tmp_path_factory.mktemp("cmp-home")
    helm = helm_path(3)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HELM_", "ARGOCD_"))}
    for var in ("HELM_DATA_HOME", "HELM_CONFIG_HOME", "HELM_CACHE_HOME"):
        env[var] = str(home / var.lower())
    env["PATH"] = os.path.dirname(helm) + os.pathsep + env["PATH"]
    p = subprocess.run([helm, "plugin", "install", str(plugin_source())], env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    return env


def run_step(step, cwd, env, app_env):
    spec = PLUGIN["spec"][step]
    full = dict(env, ARGOCD_APP_NAME=APP, ARGOCD_APP_NAMESPACE=NAMESPACE,
                **{f"ARGOCD_ENV_{k}": v for k, v in app_env.items()})
    return subprocess.run(spec["command"] + spec["args"], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def chart(tmp_path):
    d = tmp_path / "repo" / "chart"
    shutil.copytree(EXAMPLE_CHART, d)
    return d


def test_plugin_manifest():
    assert PLUGIN["apiVersion"] == "argoproj.io/v1alpha1"
    assert PLUGIN["kind"] == "ConfigManagementPlugin"
    assert PLUGIN["metadata"]["name"] == "chartreuse" and PLUGIN["spec"]["version"] == "v1"
    assert PLUGIN["spec"]["discover"] == {"fileName": "./Chart.yaml"}
    for step in ("init", "generate"):
        assert PLUGIN["spec"][step]["command"] == ["sh", "-c"]


def test_generate_renders_argocd_hooks(chart, sidecar_env, tmp_path):
    (chart / "chartreuse-prod.yaml").write_text("stopPodsTimeout: 1200\n")
    app_env = {"CHARTREUSE_CONFIG": "chartreuse-prod.yaml",
               "CHARTREUSE_SET": "argocd.syncWave=-20,upgradeJobWeight=5",
               "HELM_VALUES": "values.yaml"}
    p = run_step("init", chart, sidecar_env, app_env)
    assert p.returncode == 0, p.stderr
    assert p.stdout == ""  # Argo CD reads generate's stdout only; init says nothing there
    p = run_step("generate", chart, sidecar_env, app_env)
    assert p.returncode == 0, p.stderr
    docs = [d for d in yaml.safe_load_all(p.stdout) if d]
    ours = [d for d in docs if d["metadata"].get("labels", {}).get("app.kubernetes.io/name")
            == "chartreuse"]
    assert ours, p.stdout
    assert_valid_objects(ours)
    for o in ours:
        ann = o["metadata"].get("annotations", {})
        assert "argocd.argoproj.io/hook" in ann and not any(k.startswith("helm.sh/hook")
                                                            for k in ann), o["metadata"]
        assert o["metadata"]["labels"]["app.kubernetes.io/instance"] == APP
        assert o["metadata"]["namespace"] == NAMESPACE
    job = next(o for o in ours if o["kind"] == "Job")
    assert job["metadata"]["name"] == f"{APP}-chartreuse-upgrade"
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "Sync"
    assert job["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "-20"
    config = next(o for o in ours if o["kind"] == "ConfigMap")
    assert "1200" in yaml.safe_dump(config["data"])  # the config file reached chartreuse
    # The chart's own objects are there too, in the release's name.
    assert any(d["kind"] == "Deployment" for d in docs)


def test_values_are_not_shell(chart, sidecar_env, tmp_path):
    marker = tmp_path / "pwned"
    p = run_step("generate", chart, sidecar_env,
                 {"CHARTREUSE_SET": f"stopPodsTimeout=$(touch {marker})",
                  "HELM_VALUES": f"*;touch {marker}"})
    assert p.returncode != 0
    assert not marker.exists()


def test_init_builds_missing_dependencies(chart, sidecar_env, tmp_path):
    dep = tmp_path / "repo" / "common"
    (dep / "templates").mkdir(parents=True)
    (dep / "Chart.yaml").write_text("apiVersion: v2\nname: common\nversion: 1.0.0\n")
    with open(chart / "Chart.yaml", "a") as f:
        f.write("dependencies:\n  - name: common\n    version: 1.0.0\n"
                "    repository: file://../common\n")
    p = run_step("init", chart, sidecar_env, {})
    assert p.returncode == 0, p.stderr
    assert (chart / "charts" / "common-1.0.0.tgz").exists()
    p = run_step("generate", chart, sidecar_env, {})
    assert p.returncode == 0, p.stderr


def test_docs_show_an_application_that_picks_this_plugin():
    """The Application manifests of the READMEs name the plugin as Argo CD does
    (<name>-<version>) and pass only the env the plugin reads."""
    import re
    name = f"{PLUGIN['metadata']['name']}-{PLUGIN['spec']['version']}"
    script = PLUGIN["spec"]["generate"]["args"][0]
    read = set(re.findall(r"ARGOCD_ENV_([A-Z_]+)", script))
    for doc in (REPO / "README.md", REPO / "deploy" / "argocd" / "README.md"):
        blocks = re.findall(r"^```yaml\n(.*?)^```", doc.read_text(), re.M | re.S)
        apps = [b for b in blocks if "plugin:" in b]
        assert apps, doc
        for b in apps:
            plugin = yaml.safe_load(b)["spec"]["source"]["plugin"]
            assert plugin["name"] == name, doc
            assert {e["name"] for e in plugin["env"]} == read, doc
