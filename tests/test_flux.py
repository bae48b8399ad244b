"""deploy/flux/README.md: the CI step's render (`helm chartreuse template` with the page's
chartreuse config) is valid for the Kubernetes API and carries what Flux needs, and every
YAML block of the page parses, the Flux objects with the expected apiVersion and kind."""
import os
import re
import shlex
import shutil
import subprocess

import pytest
import yaml

from conftest import EXAMPLE_CHART, REPO, helm_path, plugin_source
from schemas import assert_valid_objects

DOC = (REPO / "deploy" / "flux" / "README.md").read_text()
BLOCKS = re.findall(r"^```yaml\n(.*?)^```", DOC, re.M | re.S)
FLUX_KINDS = {("source.toolkit.fluxcd.io/v1", "OCIRepository"),
              ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")}


def block(first_line):
    return next(b for b in BLOCKS if b.startswith(first_line + "\n"))


def test_every_yaml_block_parses_and_flux_objects_are_known():
    assert len(BLOCKS) >= 3
    seen = set()
    for b in BLOCKS:
        for d in yaml.safe_load_all(b):
            if isinstance(d, dict) and "kind" in d:
                seen.add((d["apiVersion"], d["kind"]))
    assert seen == FLUX_KINDS
    objs = {d["kind"]: d for d in yaml.safe_load_all(BLOCKS[-1])}
    ks = objs["Kustomization"]["spec"]
    assert ks["sourceRef"] == {"kind": "OCIRepository",
                               "name": objs["OCIRepository"]["metadata"]["name"]}
    assert ks["wait"] is True and ks["prune"] is True
    ci = yaml.safe_load(block("# .github/workflows/deploy.yml"))
    pushed = " ".join(s.get("run", "") for s in ci["jobs"]["manifests"]["steps"])
    assert objs["OCIRepository"]["spec"]["url"] in pushed


@pytest.mark.helm
def test_the_ci_render_is_valid(tmp_path):
    steps = yaml.safe_load(block("# .github/workflows/deploy.yml"))["jobs"]["manifests"]["steps"]
    script = next(s["run"] for s in steps if s.get("name") == "Render with chartreuse")
    render = shlex.split(next(l for l in script.splitlines() if "helm chartreuse template" in l))
    assert render[-2] == ">"
    # The application repository: the example chart as ./chart, the page's config.
    work = tmp_path / "app"
    shutil.copytree(EXAMPLE_CHART, work / "chart")
    (work / "chartreuse-flux.yaml").write_text(block("# chartreuse-flux.yaml"))
    helm = helm_path(3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELM_")}
    for var in ("HELM_DATA_HOME", "HELM_CONFIG_HOME", "HELM_CACHE_HOME"):
        env[var] = str(tmp_path / var.lower())
    p = subprocess.run([helm, "plugin", "install", str(plugin_source())], env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    p = subprocess.run([helm] + render[1:-2], cwd=work, env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    docs = [d for d in yaml.safe_load_all(p.stdout) if d]
    ours = [d for d in docs
            if d["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "chartreuse"]
    assert any(d["kind"] == "Job" for d in ours)
    assert_valid_objects(ours)
    for d in ours:
        assert d["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/force"] == "enabled"
        assert d["metadata"]["namespace"] == "billing"
    assert any(d["kind"] == "Deployment" for d in docs)
