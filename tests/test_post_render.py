"""The post-renderer as Helm runs it: manifests on stdin, the same bytes plus the injected
objects on stdout; every setting checked field by field."""
import base64
import re

import pytest
import yaml

from conftest import SLOWDOWN, injected, post_render, run
from schemas import assert_valid_objects

CHART_OUTPUT = """\
---
# Source: demo/templates/service.yaml
# a comment Helm keeps
apiVersion: v1
kind: Service
metadata:
  name: demo-web
  namespace: prod
  labels:
    app.kubernetes.io/instance: demo
spec:
  ports: [{port: 80}]   # flow style, comments
---
# Source: demo/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo-web
  namespace: prod
  labels: {app.kubernetes.io/instance: demo, release: demo}
spec:
  template:
    spec:
      containers:
        - name: web
          image: "registry.example.com/demo:1.0"
          args: ['--x', "y"]
          env:
            - {name: MULTI, value: "a\\nb"}
            - name: BLOCK
              value: |
                line one
                  indented
---
# Source: demo/templates/chartreuse.yaml
apiVersion: chartreuse.wiremind.io/v1
kind: ChartreuseConfig
metadata:
  name: chartreuse
image:
  repository: registry.example.com/demo
  tag: "1.0"
databases:
  - name: main
    host: demo-postgresql
    user: demo
    passwordSecret: {name: demo-db, key: password}
    database: demo
"""

PLAIN_INPUT = CHART_OUTPUT.split("---\n# Source: demo/templates/chartreuse.yaml")[0]
CONFIG_DOC = "---\n# Source: demo/templates/chartreuse.yaml" + \
    CHART_OUTPUT.split("---\n# Source: demo/templates/chartreuse.yaml")[1]


def ok(result):
    assert result.rc == 0, result.err.decode()
    return result


def failed(result, *fragments):
    """A failure: exit 1 (2 for bad usage), not a signal; nothing on stdout; one line on
    stderr containing fragments."""
    assert result.rc in (1, 2), f"exit status {result.rc}: {result.err_lines}"
    assert result.out == b"", "the post-renderer must print nothing on failure"
    assert len(result.err_lines) == 1, result.err_lines
    for f in fragments:
        assert f in result.err_lines[0], (f, result.err_lines[0])
    return result.err_lines[0]


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


def test_input_passes_through_byte_for_byte_and_config_document_is_removed():
    r = ok(post_render(CHART_OUTPUT))
    assert r.out.startswith(PLAIN_INPUT.encode())
    assert b"# Source: demo/templates/chartreuse.yaml" not in r.out
    # Everything after the input is ours, and starts a new document.
    rest = r.out[len(PLAIN_INPUT):]
    assert rest.startswith(b"---\n# Source: chartreuse/templates/")


def test_input_without_trailing_newline_keeps_its_bytes():
    text = PLAIN_INPUT.rstrip("\n")
    r = ok(post_render(CONFIG_DOC + text))
    assert r.out.startswith(text.encode() + b"\n---\n# Source: chartreuse/")


def test_output_is_deterministic():
    a = ok(post_render(CHART_OUTPUT)).out
    b = ok(post_render(CHART_OUTPUT)).out
    assert a == b


def test_release_and_namespace_are_inferred_from_the_objects():
    objs = injected(ok(post_render(CHART_OUTPUT)))
    job = objs["Job"][0]
    assert job["metadata"]["name"] == "demo-chartreuse-upgrade"
    assert job["metadata"]["namespace"] == "prod"
    assert job["metadata"]["labels"]["app.kubernetes.io/instance"] == "demo"


def test_after_deployment_mode_hooks_weights_and_policies():
    objs = injected(ok(post_render(CHART_OUTPUT)))
    assert sorted(objs) == ["ConfigMap", "Job", "Role", "RoleBinding", "Secret",
                            "ServiceAccount"]
    job = objs["Job"][0]
    ann = job["metadata"]["annotations"]
    assert ann["helm.sh/hook"] == "post-install,post-upgrade"
    assert ann["helm.sh/hook-weight"] == "1"
    assert ann["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    assert ann["chartreuse.wiremind.io/version"] == run(["version", "--short"]).text.strip()
    for kind in ("ConfigMap", "Role", "RoleBinding", "Secret", "ServiceAccount"):
        a = objs[kind][0]["metadata"]["annotations"]
        assert a["helm.sh/hook"] == "post-install,post-upgrade", kind
        assert a["helm.sh/hook-weight"] == "-1", kind
        assert a["helm.sh/hook-delete-policy"] == \
            "before-hook-creation,hook-succeeded,hook-failed", kind
    # The password stays in the user's Secret; ours holds the URL without it.
    data = objs["Secret"][0]["data"]
    assert base64.b64decode(data["CHARTREUSE_DB_0_URL"]) == \
        b"postgresql://demo@demo-postgresql:5432/demo"


def test_job_spec_matches_the_reference():
    job = injected(ok(post_render(CHART_OUTPUT)))["Job"][0]
    spec = job["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["ttlSecondsAfterFinished"] == 1800
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["terminationGracePeriodSeconds"] == 0
    assert pod["serviceAccountName"] == "demo-chartreuse"
    labels = spec["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "chartreuse"
    assert labels["app.kubernetes.io/component"] == "migration"
    inits = [c["name"] for c in pod["initContainers"]]
    assert inits == ["chartreuse-binary", "wait-postgres-main"]
    (main,) = pod["containers"]
    assert main["image"] == "registry.example.com/demo:1.0"
    assert main["command"] == ["/chartreuse/bin/chartreuse", "migrate"]
    assert main["args"] == ["--config", "/etc/chartreuse/config.yaml"]
    env = env_of(main)
    assert env["CHARTREUSE_DB_0_URL"]["valueFrom"]["secretKeyRef"] == \
        {"name": "demo-chartreuse", "key": "CHARTREUSE_DB_0_URL"}
    assert env["CHARTREUSE_DB_0_PASSWORD"]["valueFrom"]["secretKeyRef"] == \
        {"name": "demo-db", "key": "password"}
    assert env["CHARTREUSE_RELEASE_NAME"]["value"] == "demo"
    assert env["CHARTREUSE_UPGRADE_BEFORE_DEPLOYMENT"]["value"] == "false"
    assert "HELM_IS_INSTALL" not in env
    assert env["CHARTREUSE_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == \
        "metadata.namespace"
    mounts = {m["name"]: m["mountPath"] for m in main["volumeMounts"]}
    assert mounts == {"chartreuse-config": "/etc/chartreuse",
                      "chartreuse-binary": "/chartreuse"}
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["chartreuse-config"]["configMap"]["name"] == "demo-chartreuse"
    assert vols["chartreuse-binary"] == {"name": "chartreuse-binary", "emptyDir": {}}
    wait = pod["initContainers"][1]
    assert wait["command"] == ["chartreuse", "wait", "postgres"]
    assert wait["args"][wait["args"].index("--url-env") + 1] == "CHARTREUSE_DB_0_URL"
    assert set(env_of(wait)) == {"CHARTREUSE_DB_0_URL", "CHARTREUSE_DB_0_PASSWORD"}


def test_before_deployment_mode_splits_install_and_upgrade_and_adds_restore():
    objs = injected(ok(post_render(CHART_OUTPUT, "--set", "upgradeBeforeDeployment=true")))
    jobs = {j["metadata"]["name"]: j for j in objs["Job"]}
    assert set(jobs) == {"demo-chartreuse-upgrade", "demo-chartreuse-install",
                         "demo-chartreuse-restore"}
    hook = {n: j["metadata"]["annotations"]["helm.sh/hook"] for n, j in jobs.items()}
    assert hook == {"demo-chartreuse-upgrade": "pre-upgrade",
                    "demo-chartreuse-install": "post-install",
                    "demo-chartreuse-restore": "post-upgrade"}
    up = env_of(jobs["demo-chartreuse-upgrade"]["spec"]["template"]["spec"]["containers"][0])
    inst = env_of(jobs["demo-chartreuse-install"]["spec"]["template"]["spec"]["containers"][0])
    assert up["HELM_IS_INSTALL"]["value"] == "false"
    assert inst["HELM_IS_INSTALL"]["value"] == "true"
    assert up["CHARTREUSE_UPGRADE_BEFORE_DEPLOYMENT"]["value"] == "true"
    restore = jobs["demo-chartreuse-restore"]["spec"]["template"]["spec"]
    assert restore["containers"][0]["command"] == ["chartreuse", "restore"]
    assert restore["containers"][0]["args"] == ["--release", "demo", "--namespace", "prod"]
    assert "initContainers" not in restore
    comp = objs["Role"][0]["metadata"]["annotations"]["helm.sh/hook"]
    assert comp == "pre-upgrade,post-install,post-upgrade"


def test_before_deployment_without_restore():
    objs = injected(ok(post_render(CHART_OUTPUT, "--set", "upgradeBeforeDeployment=true",
                                   "--set", "restorePods=false")))
    assert sorted(j["metadata"]["name"] for j in objs["Job"]) == \
        ["demo-chartreuse-install", "demo-chartreuse-upgrade"]
    assert objs["Role"][0]["metadata"]["annotations"]["helm.sh/hook"] == \
        "pre-upgrade,post-install"


@pytest.mark.parametrize("mode", [(), ("--set", "upgradeBeforeDeployment=true")],
                         ids=["after", "before"])
def test_every_job_asks_helm_for_its_log_when_it_fails(mode):
    """helm.sh/hook-output-log-policy (Helm 4, HIP-0019): Helm prints a failed hook Job's
    Pod log with its error, so `helm upgrade` shows the migration's own error. Only on
    failure (a successful migration's log would bury Helm's output), only on the Jobs
    (Helm reads it from Jobs and Pods alone), and not in Argo CD mode."""
    objs = injected(ok(post_render(CHART_OUTPUT, *mode)))
    policy = {j["metadata"]["name"]:
              j["metadata"]["annotations"].get("helm.sh/hook-output-log-policy")
              for j in objs["Job"]}
    assert set(policy.values()) == {"hook-failed"}, policy
    assert len(policy) == (3 if mode else 1), policy
    for kind in COMPANIONS:
        assert "helm.sh/hook-output-log-policy" not in \
            objs[kind][0]["metadata"]["annotations"], kind
    argo = injected(ok(post_render(CHART_OUTPUT, *mode, "--set", "deploymentMethod=argocd")))
    for obj in (o for kind in argo.values() for o in kind):
        assert "helm.sh/hook-output-log-policy" not in \
            (obj["metadata"].get("annotations") or {}), obj["metadata"]["name"]


COMPANIONS = ("ConfigMap", "Role", "RoleBinding", "Secret", "ServiceAccount")


def hooks_file_docs(path):
    """The documents of a --hooks-to file, by kind."""
    out = {}
    for d in yaml.safe_load_all(path.read_text()):
        if d:
            out.setdefault(d["kind"], []).append(d)
    return out


def test_hooks_to_moves_the_jobs_and_makes_the_companions_release_resources(tmp_path):
    """Helm 3's wrapper: the Jobs go to the file with their hook annotations; the companions
    go to stdout without any, and a copy of them to the file (a pre-upgrade run applies
    them before Helm does)."""
    hooks = tmp_path / "hooks.yaml"
    r = ok(post_render(CHART_OUTPUT, "--set", "upgradeBeforeDeployment=true",
                       "--hooks-to", str(hooks)))
    assert r.out.startswith(PLAIN_INPUT.encode())
    objs = injected(r)
    assert sorted(objs) == sorted(COMPANIONS)
    for kind in COMPANIONS:
        ann = objs[kind][0]["metadata"].get("annotations") or {}
        assert not any(k.startswith("helm.sh/") for k in ann), (kind, ann)
    assert (hooks.stat().st_mode & 0o777) == 0o600
    filed = hooks_file_docs(hooks)
    assert sorted(filed) == sorted(COMPANIONS + ("Job",))
    for kind in COMPANIONS:
        assert filed[kind] == objs[kind], kind
    hook = {j["metadata"]["name"]: j["metadata"]["annotations"]["helm.sh/hook"]
            for j in filed["Job"]}
    assert hook == {"demo-chartreuse-upgrade": "pre-upgrade",
                    "demo-chartreuse-install": "post-install",
                    "demo-chartreuse-restore": "post-upgrade"}
    # The same Jobs as without --hooks-to: only where they go differs.
    plain = injected(ok(post_render(CHART_OUTPUT, "--set", "upgradeBeforeDeployment=true")))
    assert filed["Job"] == plain["Job"]


def test_hooks_to_is_a_function_of_its_input_and_replaces_the_file(tmp_path):
    hooks = tmp_path / "hooks.yaml"
    hooks.write_text("stale: content from an earlier run\n")
    hooks.chmod(0o600)
    a = ok(post_render(CHART_OUTPUT, "--hooks-to", str(hooks))).out
    first = hooks.read_bytes()
    assert b"stale" not in first
    b = ok(post_render(CHART_OUTPUT, f"--hooks-to={hooks}")).out
    assert (a, first) == (b, hooks.read_bytes())
    jobs = hooks_file_docs(hooks)["Job"]
    assert [j["metadata"]["annotations"]["helm.sh/hook"] for j in jobs] == \
        ["post-install,post-upgrade"]


def test_hooks_to_with_two_migrations_files_every_job(tmp_path):
    second = CONFIG_DOC.replace("name: chartreuse", "name: reporting", 1)
    hooks = tmp_path / "hooks.yaml"
    r = ok(post_render(CHART_OUTPUT + second, "--hooks-to", str(hooks)))
    assert "Job" not in injected(r)
    names = sorted(j["metadata"]["name"] for j in hooks_file_docs(hooks)["Job"])
    assert names == ["demo-chartreuse-upgrade", "demo-reporting-upgrade"]


def test_hooks_to_leaves_argocd_alone(tmp_path):
    """Argo CD runs its own hooks whatever Helm does: nothing moves."""
    hooks = tmp_path / "hooks.yaml"
    args = ("--set", "deploymentMethod=argocd")
    r = ok(post_render(CHART_OUTPUT, *args, "--hooks-to", str(hooks)))
    assert r.out == ok(post_render(CHART_OUTPUT, *args)).out
    assert hooks.read_text() == ""


def test_hooks_to_an_unwritable_file_fails_with_nothing_on_stdout(tmp_path):
    failed(post_render(CHART_OUTPUT, "--hooks-to", str(tmp_path / "no" / "such" / "f")),
           "--hooks-to", str(tmp_path / "no"))


def test_argocd_mode():
    objs = injected(ok(post_render(CHART_OUTPUT, "--set", "deploymentMethod=argocd")))
    job = objs["Job"][0]
    ann = job["metadata"]["annotations"]
    assert ann["argocd.argoproj.io/hook"] == "Sync"
    assert ann["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
    assert ann["argocd.argoproj.io/sync-wave"] == "-50"
    assert not any(k.startswith("helm.sh/") for k in ann)
    role = objs["Role"][0]["metadata"]["annotations"]
    assert role["argocd.argoproj.io/sync-wave"] == "-51"
    restore = [j for j in objs["Job"] if j["metadata"]["name"].endswith("-restore")]
    assert restore[0]["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PostSync"


def test_several_databases_and_elasticsearch():
    cfg = CONFIG_DOC + """\
  - name: analytics
    host: analytics-db
    port: 6432
    user: an
    password: "inline-pw"
    database: analytics
    alembicDirectory: /app/analytics
    alembicSection: analytics
eslembic:
  url: http://elastic:es-pw@es:9200
"""
    objs = injected(ok(post_render(PLAIN_INPUT + cfg)))
    pod = objs["Job"][0]["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == \
        ["chartreuse-binary", "wait-postgres-main", "wait-postgres-analytics",
         "wait-elasticsearch"]
    secret = objs["Secret"][0]
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data == {
        "CHARTREUSE_DB_0_URL": "postgresql://demo@demo-postgresql:5432/demo",
        "CHARTREUSE_DB_1_URL": "postgresql://an:inline-pw@analytics-db:6432/analytics",
        "CHARTREUSE_ESLEMBIC_URL": "http://elastic:es-pw@es:9200",
    }
    env = env_of(pod["containers"][0])
    assert env["CHARTREUSE_DB_1_URL"]["valueFrom"]["secretKeyRef"]["name"] == "demo-chartreuse"
    assert "CHARTREUSE_DB_1_PASSWORD" not in env
    assert env["CHARTREUSE_ESLEMBIC_URL"]["valueFrom"]["secretKeyRef"]["key"] == \
        "CHARTREUSE_ESLEMBIC_URL"
    es = pod["initContainers"][3]
    assert es["command"] == ["chartreuse", "wait", "elasticsearch"]
    cm = yaml.safe_load(objs["ConfigMap"][0]["data"]["config.yaml"])
    assert [d["name"] for d in cm["databases"]] == ["main", "analytics"]
    assert cm["databases"][1]["alembicSection"] == "analytics"
    # Passwords live in the Secret only.
    for kind, docs in objs.items():
        if kind != "Secret":
            assert "inline-pw" not in yaml.safe_dump(docs)
            assert "es-pw" not in yaml.safe_dump(docs)


def test_elasticsearch_off_means_no_wait_container():
    pod = injected(ok(post_render(CHART_OUTPUT)))["Job"][0]["spec"]["template"]["spec"]
    assert not any("elasticsearch" in c["name"] for c in pod["initContainers"])


HOSTILE = "p@ss: w'\"rd # {x} *y &z\n- [a]\t|>%@`!"


def test_hostile_values_come_out_as_exactly_those_strings():
    cfg = f"""\
apiVersion: chartreuse.wiremind.io/v1
kind: ChartreuseConfig
image: {{repository: app}}
databases:
  - name: {yaml.safe_dump(HOSTILE, default_style='"').strip()}
    host: db
    user: u
    password: {yaml.safe_dump(HOSTILE, default_style='"').strip()}
    database: {yaml.safe_dump(HOSTILE + " db", default_style='"').strip()}
podAnnotations:
  note: {yaml.safe_dump(HOSTILE, default_style='"').strip()}
"""
    r = ok(post_render(PLAIN_INPUT + "---\n" + cfg))
    objs = injected(r)
    pod_tpl = objs["Job"][0]["spec"]["template"]
    assert pod_tpl["metadata"]["annotations"]["note"] == HOSTILE
    cm = yaml.safe_load(objs["ConfigMap"][0]["data"]["config.yaml"])
    assert cm["databases"][0]["name"] == HOSTILE
    assert cm["databases"][0]["database"] == HOSTILE + " db"
    assert "password" not in cm["databases"][0]
    url = base64.b64decode(objs["Secret"][0]["data"]["CHARTREUSE_DB_0_URL"]).decode()
    from urllib.parse import unquote, urlsplit
    parts = urlsplit(url)
    assert unquote(parts.password) == HOSTILE
    assert unquote(parts.path[1:]) == HOSTILE + " db"
    # Same through --set, where the value is one argv element.
    r2 = ok(post_render(PLAIN_INPUT + "---\n" + cfg, "--set", f"podAnnotations.note={HOSTILE}x"))
    ann = injected(r2)["Job"][0]["spec"]["template"]["metadata"]["annotations"]
    assert ann["note"] == HOSTILE + "x"


def test_precedence_set_over_file_over_chart_over_inference(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("namespace: from-file\nupgradeJobWeight: 7\nrelease: file-rel\n")
    objs = injected(ok(post_render(CHART_OUTPUT, "--config", str(f),
                                   "--set", "upgradeJobWeight=9")))
    job = objs["Job"][0]
    assert job["metadata"]["namespace"] == "from-file"        # file over inference
    assert job["metadata"]["name"] == "file-rel-chartreuse-upgrade"
    assert job["metadata"]["annotations"]["helm.sh/hook-weight"] == "9"  # --set over file
    objs = injected(ok(post_render(CHART_OUTPUT, "--config", str(f), "--release", "arg-rel")))
    assert objs["Job"][0]["metadata"]["name"] == "arg-rel-chartreuse-upgrade"


def test_long_release_names_stay_within_63_characters():
    rel = "r" * 53  # the longest release name Helm takes
    objs = injected(ok(post_render(CHART_OUTPUT, "--release", rel)))
    names = [d["metadata"]["name"] for docs in objs.values() for d in docs]
    assert all(len(n) <= 63 for n in names), names
    assert len(set(names)) == len(set(n for n in names))
    jobs = [j["metadata"]["name"] for j in objs["Job"]]
    assert jobs[0].endswith("-chartreuse-upgrade")


def test_two_config_documents_give_two_migrations_ordered_by_weight():
    second = CONFIG_DOC.replace("name: chartreuse", "name: billing").replace(
        "databases:", "upgradeJobWeight: 2\ndatabases:")
    objs = injected(ok(post_render(CHART_OUTPUT + second)))
    jobs = {j["metadata"]["name"]: j["metadata"]["annotations"]["helm.sh/hook-weight"]
            for j in objs["Job"]}
    assert jobs == {"demo-chartreuse-upgrade": "1", "demo-billing-upgrade": "2"}


# --- every injected object is one the API server takes ---------------------------------------

ESLEMBIC = "eslembic:\n  url: http://elastic:es-pw@es:9200\n  migrate: true\n  cleanIndex: true\n"
ESLEMBIC_SECRET = "eslembic:\n  urlSecret: {name: es, key: url}\n"
SECOND_DATABASE = """\
  - name: analytics
    url: postgresql://an:pw@analytics-db:6432/analytics
    alembicSection: analytics
"""
POD_SETTINGS = """\
priorityClassName: migrations
resources: {limits: {memory: 256Mi}, requests: {cpu: 100m}}
nodeSelector: {pool: batch}
tolerations: [{key: batch, operator: Exists, effect: NoSchedule}]
affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: pool, operator: In, values: [batch]}]}]}}}
podLabels: {team: billing}
podAnnotations: {example.com/note: "x: y"}
env: [{name: EXTRA, value: "1"}, {name: FROM_CM, valueFrom: {configMapKeyRef: {name: cm, key: k}}}]
envFrom: [{secretRef: {name: extra-env}}]
volumes: [{name: extra, emptyDir: {}}]
volumeMounts: [{name: extra, mountPath: /extra}]
"""

MODES = {
    "after": ((), ""),
    "before": (("--set", "upgradeBeforeDeployment=true"), ""),
    "before-without-restore": (("--set", "upgradeBeforeDeployment=true",
                                "--set", "restorePods=false"), ""),
    "argocd": (("--set", "deploymentMethod=argocd"), ""),
    "argocd-presync": (("--set", "deploymentMethod=argocd", "--set", "argocd.hook=PreSync"), ""),
    "argocd-postsync": (("--set", "deploymentMethod=argocd", "--set", "argocd.hook=PostSync"),
                        ""),
    "eslembic": ((), ESLEMBIC),
    "eslembic-before": (("--set", "upgradeBeforeDeployment=true"), ESLEMBIC_SECRET),
    "eslembic-argocd": (("--set", "deploymentMethod=argocd"), ESLEMBIC),
    "two-databases": ((), SECOND_DATABASE),
    "baked": (("--set", "chartreuseImage.delivery=baked"), ""),
    "pod-settings": (("--set", "metadata.labels.team=billing",
                      "--set", "metadata.annotations.example\\.com/owner=billing"), POD_SETTINGS),
    "no-rbac": (("--set", "rbac.create=false", "--set", "serviceAccount.create=false",
                 "--set", "serviceAccount.name=migrator"), ""),
    "long-release": (("--release", "r" * 51 + "-x"), ""),
}


def config_with(extra):
    """CONFIG_DOC with extra settings (a database list entry goes to the list)."""
    if extra.startswith("  - "):
        return CONFIG_DOC + extra
    return CONFIG_DOC.replace("databases:", extra + "databases:")


@pytest.mark.parametrize("mode", sorted(MODES))
def test_injected_objects_are_valid_kubernetes_objects(mode):
    args, extra = MODES[mode]
    objs = [o for kind in injected(ok(post_render(PLAIN_INPUT + config_with(extra), *args)))
            .values() for o in kind]
    assert_valid_objects(objs)
    if mode.startswith("before") or mode.startswith("eslembic-before"):
        names = [o["metadata"]["name"] for o in objs if o["kind"] == "Job"]
        assert any(n.endswith("-restore") for n in names) == (mode != "before-without-restore")


@pytest.mark.parametrize("mode", ["after", "before", "eslembic-before", "pod-settings"])
def test_hooks_to_output_is_valid_kubernetes_objects(mode, tmp_path):
    """Helm 3's wrapper: the companions on stdout, and the Jobs and companions in the file."""
    args, extra = MODES[mode]
    hooks = tmp_path / "hooks.yaml"
    r = ok(post_render(PLAIN_INPUT + config_with(extra), *args, "--hooks-to", str(hooks)))
    out = [o for kind in injected(r).values() for o in kind]
    assert_valid_objects(out, complete=False)  # the Jobs, which name them, are in the file
    assert_valid_objects([o for kind in hooks_file_docs(hooks).values() for o in kind])


@pytest.mark.parametrize("value,why", [
    ("a_b", "DNS-1123"), ("A", "DNS-1123"), ("x" * 64, "DNS-1123")])
def test_the_object_checks_refuse_what_the_api_server_refuses(value, why):
    """The checks themselves: a name the API server refuses, a mount of no volume, a
    duplicate container, an env name, and base64 are all caught."""
    job = injected(ok(post_render(CHART_OUTPUT)))["Job"][0]
    job["metadata"]["name"] = value
    with pytest.raises(AssertionError, match=why):
        assert_valid_objects([job], complete=False)
    job = injected(ok(post_render(CHART_OUTPUT)))["Job"][0]
    pod = job["spec"]["template"]["spec"]
    pod["containers"][0]["volumeMounts"].append({"name": "nope", "mountPath": "/nope"})
    pod["initContainers"].append(dict(pod["containers"][0]))
    pod["containers"][0]["env"].append({"name": "1BAD", "value": "x"})
    pod["containers"][0]["stray"] = True
    with pytest.raises(AssertionError) as e:
        assert_valid_objects([job], complete=False)
    for what in ("which is no volume", "container names repeat", "env name '1BAD'",
                 "Additional properties are not allowed ('stray' was unexpected)"):
        assert what in str(e.value), (what, str(e.value))
    secret = injected(ok(post_render(CHART_OUTPUT)))["Secret"][0]
    secret["data"]["CHARTREUSE_DB_0_URL"] = "not base64!"
    with pytest.raises(AssertionError, match="is not base64"):
        assert_valid_objects([secret], complete=False)


# --- configuration errors --------------------------------------------------------------

def test_unknown_key_in_config_file_names_file_line_and_key(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("release: r\nstopPods: true\ndatabases:\n  - host: h\n    prot: 5432\n")
    line = failed(post_render(PLAIN_INPUT, "--config", str(f)))
    assert f"config file {f}:5" in line and "databases[0].prot" in line and "unknown key" in line


def test_wrong_type_in_chart_document_names_its_template_and_line():
    """The line is the template's (counted from the line after its "# Source:"), which is
    what `helm template --show-only` shows, not one of the whole stream."""
    bad = CONFIG_DOC.replace("  tag: \"1.0\"", "  tag: \"1.0\"\nstopPods: sometimes")
    line = failed(post_render(PLAIN_INPUT + bad))
    template_lines = bad.split("# Source: demo/templates/chartreuse.yaml\n", 1)[1].splitlines()
    expected_line = template_lines.index("stopPods: sometimes") + 1
    assert "stdin: ChartreuseConfig (document 3) in demo/templates/chartreuse.yaml:" \
        f"{expected_line}: stopPods: expected true or false" in line


def test_config_document_without_a_template_name_has_stream_lines():
    bad = CONFIG_DOC.replace("# Source: demo/templates/chartreuse.yaml\n", "").replace(
        "  tag: \"1.0\"", "  tag: \"1.0\"\nstopPods: sometimes")
    line = failed(post_render(PLAIN_INPUT + bad))
    expected_line = (PLAIN_INPUT + bad).splitlines().index("stopPods: sometimes") + 1
    assert f"stdin: ChartreuseConfig (document 3):{expected_line}: stopPods" in line


def test_missing_release_is_explained():
    text = PLAIN_INPUT.replace("app.kubernetes.io/instance: demo", "x: y").replace(
        ", release: demo", "")
    failed(post_render(text + CONFIG_DOC), "release name is unknown", "--release")


def test_ambiguous_release_is_explained():
    text = PLAIN_INPUT.replace("app.kubernetes.io/instance: demo, release: demo",
                               "app.kubernetes.io/instance: other")
    failed(post_render(text + CONFIG_DOC), "several releases", "demo", "other")


def test_existing_service_account_and_no_rbac():
    objs = injected(ok(post_render(CHART_OUTPUT, "--set", "serviceAccount.create=false",
                                   "--set", "serviceAccount.name=migrator",
                                   "--set", "rbac.create=false")))
    assert "ServiceAccount" not in objs and "Role" not in objs and "RoleBinding" not in objs
    assert objs["Job"][0]["spec"]["template"]["spec"]["serviceAccountName"] == "migrator"
    failed(post_render(CHART_OUTPUT, "--set", "serviceAccount.create=false"),
           "serviceAccount.name is required")


def test_baked_delivery_runs_chartreuse_from_the_application_image():
    objs = injected(ok(post_render(CHART_OUTPUT, "--set", "chartreuseImage.delivery=baked")))
    pod = objs["Job"][0]["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["wait-postgres-main"]
    assert pod["initContainers"][0]["image"] == "registry.example.com/demo:1.0"
    assert pod["containers"][0]["command"] == ["chartreuse", "migrate"]
    assert [v["name"] for v in pod["volumes"]] == ["chartreuse-config"]


def test_pod_settings_are_copied_into_the_job():
    cfg = CONFIG_DOC + """\
priorityClassName: migrations
resources: {limits: {memory: 256Mi}}
nodeSelector: {pool: batch}
tolerations: [{key: batch, operator: Exists}]
affinity: {nodeAffinity: {}}
podLabels: {team: billing}
env: [{name: EXTRA, value: "1"}]
volumes: [{name: extra, emptyDir: {}}]
volumeMounts: [{name: extra, mountPath: /extra}]
image: {repository: registry.example.com/demo, tag: "1.0", pullSecret: regcred}
"""
    objs = injected(ok(post_render(PLAIN_INPUT + cfg.replace(
        "image:\n  repository: registry.example.com/demo\n  tag: \"1.0\"\n", ""))))
    tpl = objs["Job"][0]["spec"]["template"]
    pod = tpl["spec"]
    main = pod["containers"][0]
    assert pod["priorityClassName"] == "migrations"
    assert pod["nodeSelector"] == {"pool": "batch"}
    assert pod["tolerations"] == [{"key": "batch", "operator": "Exists"}]
    assert pod["affinity"] == {"nodeAffinity": {}}
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert tpl["metadata"]["labels"]["team"] == "billing"
    assert main["resources"] == {"limits": {"memory": "256Mi"}}
    assert env_of(main)["EXTRA"]["value"] == "1"
    assert env_of(main)["CHARTREUSE_UPGRADE_PRIORITYCLASS_NAME"]["value"] == "migrations"
    assert {"name": "extra", "mountPath": "/extra"} in main["volumeMounts"]
    assert {"name": "extra", "emptyDir": {}} in pod["volumes"]


def test_bad_set_is_reported():
    failed(post_render(CHART_OUTPUT, "--set", "stopPods=maybe"), "--set stopPods=maybe")
    failed(post_render(CHART_OUTPUT, "--set", "nonsense"), "KEY=VALUE")


def test_missing_config_file():
    failed(post_render(CHART_OUTPUT, "--config", "/nonexistent/c.yaml"), "/nonexistent/c.yaml")


# --- bad input (SPEC §5) -------------------------------------------------------------------

def test_malformed_yaml_names_document_line_and_column():
    text = PLAIN_INPUT + "---\napiVersion: v1\nkind: ConfigMap\ndata: [a, b\n---\nx: 1\n"
    line = failed(post_render(text), "stdin: document 3")
    m = re.search(r"line (\d+), column (\d+)", line)
    assert m, line
    lines = text.splitlines()
    assert int(m.group(1)) == len(lines) - 1  # the "---" inside the open flow sequence
    assert lines[int(m.group(1)) - 1] == "---"


# Helm reads each manifest with Go's YAML library, a port of libyaml; both cases below were
# checked with `helm lint` of both majors. libfyaml, which chartreuse used before, judged
# both the other way.
MULTILINE_QUOTED = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: q\n" \
    "  labels:\n    version: \"1.\n0\"\n"
EMPTY_KEY_IN_BLOCK = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: e\n" \
    "  labels:\n    a: b\n    : c: d\n"


def test_what_helm_reads_is_read():
    r = ok(post_render(PLAIN_INPUT + MULTILINE_QUOTED + CONFIG_DOC))
    assert r.out.startswith((PLAIN_INPUT + MULTILINE_QUOTED).encode())


def test_what_helm_refuses_is_refused():
    line = failed(post_render(PLAIN_INPUT + EMPTY_KEY_IN_BLOCK + CONFIG_DOC),
                  "document 3", "did not find expected key")
    lines = (PLAIN_INPUT + EMPTY_KEY_IN_BLOCK).splitlines()
    m = re.search(r"line (\d+), column (\d+)", line)
    assert lines[int(m.group(1)) - 1] == "    : c: d"


@pytest.mark.parametrize("doc", ["---\n- a\n- b\n", "---\njust a scalar\n", "--- ~\n"],
                         ids=["list", "scalar", "null"])
def test_document_that_is_not_a_mapping_passes_through(doc):
    """Judging the chart's documents is Helm's job (its own reading refuses these before a
    post-renderer runs): read for inference, they say nothing, and pass."""
    for args in ((), ("--release=demo", "--namespace=prod")):
        r = ok(post_render(PLAIN_INPUT + doc + CONFIG_DOC, *args))
        assert r.out.startswith((PLAIN_INPUT + doc).encode())


def test_empty_documents_are_fine():
    text = "---\n# Source: demo/templates/empty.yaml\n---\n" + PLAIN_INPUT + CONFIG_DOC
    r = ok(post_render(text))
    assert r.out.startswith(text.split("---\n# Source: demo/templates/chartreuse.yaml")[0].encode())


DUPLICATE_KEYS = """\
---
# Source: demo/templates/dup.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: a
  name: b
  namespace: prod
  labels:
    app.kubernetes.io/instance: other
    app.kubernetes.io/instance: demo
data:
  k: "1"
  k: "2"
data: {k: "3", k: "4"}
"""


@pytest.mark.parametrize("args", [(), ("--release=demo", "--namespace=prod")],
                         ids=["inferred", "given"])
def test_duplicate_keys_in_chart_documents_pass_through(args):
    """Helm 3 and 4 accept a duplicate key (the last one wins): chartreuse refused it, and
    so broke charts that deploy today."""
    r = ok(post_render(PLAIN_INPUT + DUPLICATE_KEYS + CONFIG_DOC, *args))
    assert r.out.startswith((PLAIN_INPUT + DUPLICATE_KEYS).encode())
    job = injected(r)["Job"][0]
    assert job["metadata"]["name"] == "demo-chartreuse-upgrade"


def test_inference_takes_the_last_of_duplicate_keys():
    """As Helm does: the second metadata replaces the first, namespace and labels included."""
    doc = ("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: elsewhere,"
           " labels: {release: other}}\nmetadata:\n  name: a\n  labels:\n    release: x\n"
           "    release: demo\n")
    job = injected(ok(post_render(PLAIN_INPUT + doc + CONFIG_DOC)))["Job"][0]
    assert (job["metadata"]["name"], job["metadata"]["namespace"]) == \
        ("demo-chartreuse-upgrade", "prod")


def test_duplicate_key_in_a_chartreuse_config_is_refused_at_its_line():
    bad = CONFIG_DOC.replace("databases:", "stopPods: true\nstopPods: false\ndatabases:")
    line = failed(post_render(PLAIN_INPUT + bad))
    template_lines = bad.split("# Source: demo/templates/chartreuse.yaml\n", 1)[1].splitlines()
    assert f"ChartreuseConfig (document 3) in demo/templates/chartreuse.yaml:" \
        f"{template_lines.index('stopPods: false') + 1}:" in line, line
    assert "duplicate" in line.lower(), line


def test_duplicate_key_in_a_config_file_is_refused(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("stopPods: true\nrelease: a\nstopPods: false\n")
    line = failed(post_render(CHART_OUTPUT, "--config", str(f)), f"config file {f}:3")
    assert "duplicate" in line.lower(), line


def test_alias_bomb_is_bounded():
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: bomb}", "a0: &a0 [lol, lol]"]
    for i in range(1, 30):
        lines.append(f"a{i}: &a{i} [*a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}]")
    bomb = "---\n" + "\n".join(lines) + "\n"
    r = post_render(PLAIN_INPUT + bomb + CONFIG_DOC, timeout=20)
    # Passed through untouched (Helm will judge it); what matters is bounded time/memory.
    assert r.rc == 0
    assert bomb.encode() in r.out


def test_inference_follows_aliases_to_the_latest_anchor():
    doc = ("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: *ns\n"
           "  labels: {release: *rel}\n")
    doc = doc.replace("metadata:", "x: &ns elsewhere\nx2: &ns prod\nx3: &rel demo\nmetadata:")
    r = ok(post_render(PLAIN_INPUT + doc + CONFIG_DOC))
    kept = (PLAIN_INPUT + doc).encode()
    assert r.out.startswith(kept)
    # Read on its own: PyYAML refuses an anchor defined twice, which YAML allows.
    job = [o for o in yaml.safe_load_all(r.out[len(kept):]) if o and o["kind"] == "Job"][0]
    assert (job["metadata"]["name"], job["metadata"]["namespace"]) == \
        ("demo-chartreuse-upgrade", "prod")


@pytest.mark.timing
def test_many_anchors_and_aliases_are_read_in_linear_time():
    """Looking an alias's anchor up among all the earlier ones took 20 s here."""
    n = 100000
    doc = "---\nkind: ConfigMap\nmetadata: {name: x, namespace: prod, labels: {release: demo}}\n" \
        "data:\n" + "".join(f"  a{i}: &a{i} v\n" for i in range(n)) + \
        "".join(f"  b{i}: *a{i}\n" for i in range(n))
    ok(post_render(PLAIN_INPUT + doc + CONFIG_DOC, timeout=10 * SLOWDOWN))


def test_a_chartreuse_config_of_many_keys_is_read_in_linear_time():
    """libfyaml compares each key of a mapping with every one before it, when it parses and
    on every append: 20,000 podAnnotations took about two minutes here (0.3 s now)."""
    n = 20000
    config = CONFIG_DOC + "podAnnotations:\n" + "".join(f"  k{i}: v{i}\n" for i in range(n))
    r = ok(post_render(PLAIN_INPUT + config, timeout=10 * SLOWDOWN))
    job = injected(r)["Job"][0]
    annotations = job["spec"]["template"]["metadata"]["annotations"]
    assert annotations["k0"] == "v0" and annotations[f"k{n - 1}"] == f"v{n - 1}"
    dup = CONFIG_DOC + "podAnnotations:\n" + "".join(f"  k{i}: v\n" for i in range(n)) + \
        "  k7: again\n"
    failed(post_render(PLAIN_INPUT + dup, timeout=10 * SLOWDOWN), 'duplicate key "k7"')


def test_nul_byte():
    failed(post_render(PLAIN_INPUT + "---\nkind: X\nmetadata: {name: \0}\n" + CONFIG_DOC),
           "NUL byte", "line")


def test_very_long_scalar_passes_through():
    big = "x" * (8 * 1024 * 1024)
    text = PLAIN_INPUT + f"---\napiVersion: v1\nkind: ConfigMap\ndata:\n  big: {big}\n"
    r = ok(post_render(text + CONFIG_DOC, timeout=120))
    assert r.out.startswith(text.encode())


# Streams that hold no document with content. Helm 3 hands a post-renderer "---", its
# "# Source:" line and the template's comment for a template that renders only a comment;
# Helm 4 drops such documents and hands an empty stream.
NO_DOCUMENTS = {
    "empty": "",
    "blank": "\n  \n\t\n",
    "comment-only": "# only a comment\n",
    "marker-only": "---\n",
    "marker-and-comment": "---\n# Source: demo/templates/notes.yaml\n# nothing here\n",
    "markers": "---\n---\n...\n--- # a comment\n",
    "crlf": "---\r\n# Source: demo/templates/x.yaml\r\n\r\n",
    "no-final-newline": "# a comment",
}


@pytest.mark.parametrize("stream", sorted(NO_DOCUMENTS))
def test_a_stream_without_content_is_refused_alike_with_any_options(stream, options):
    """Found by the wrappers: with --config, a failure before the config files were loaded
    freed an array that was never allocated (exit 139). And "---" alone counted as a
    manifest while the same comment without "---" did not."""
    r = post_render(NO_DOCUMENTS[stream], *options)
    assert r.rc == 1, (r.rc, r.err_lines)
    failed(r, "stdin: no manifests")


def test_malformed_yaml_is_refused_alike_with_any_options(options):
    r = post_render(PLAIN_INPUT + "---\n# Source: demo/templates/bad.yaml\na: [b\n" + CONFIG_DOC,
                    *options)
    assert r.rc == 1, (r.rc, r.err_lines)
    failed(r, "demo/templates/bad.yaml")


def test_invalid_utf8_is_refused():
    raw = PLAIN_INPUT.encode() + b"---\nkind: X\nmetadata: {name: \xff\xfe}\n" + \
        CONFIG_DOC.encode()
    failed(post_render(raw), "document 3")


@pytest.mark.parametrize("raw", [b"%%-\xff\xff i!e\x08", b"kind: X\n%x \xe0\x9a\n"],
                         ids=["directive", "after-a-document"])
def test_malformed_utf8_in_a_directive_is_refused_not_a_hang(raw, tmp_path):
    """libfyaml 0.7.12 loops forever on these (found by tests/fuzz/fuzz_post_render). It
    reads only ChartreuseConfig documents, after a UTF-8 check; libyaml reads the rest."""
    config = b"\nkind: ChartreuseConfig\nimage: {repository: app}\n"
    failed(post_render(raw + config, "--release=r", "--namespace=n", timeout=20),
           "invalid UTF-8")
    stream = raw + b"\n---\nkind: X\n"
    failed(post_render(stream, timeout=20), "invalid UTF-8")
    # Read by nobody when nothing needs reading: passed through, for Helm to judge.
    f = tmp_path / "c.yaml"
    f.write_text("image: {repository: app}\ndatabases: [{host: h, user: u, database: d}]\n")
    r = ok(post_render(stream, "--release=r", "--namespace=n", "--config", str(f), timeout=20))
    assert r.out.startswith(stream)


def test_a_document_after_an_end_marker_without_a_start_marker():
    """Found by tests/fuzz/fuzz_post_render (a heap overflow): after "...", a document may
    start without "---"; its start was taken as the end of the stream, so a ChartreuseConfig
    there was cut with a negative length (or, after the previous document, not at all)."""
    config = CONFIG_DOC.split("\n", 1)[1]          # without its "---"
    stream = PLAIN_INPUT + "...\n" + config + "...\n# trailing\n"
    r = post_render(stream)
    assert r.rc == 0, r.err.decode()
    kept = r.text.split("---\n# Source: chartreuse/")[0]
    assert kept == PLAIN_INPUT + "...\n# trailing\n"  # the config, with its "...", is cut
    assert injected(r)["Job"]


def test_a_huge_set_index_is_refused_not_filled():
    """Found by tests/fuzz/fuzz_config: --set tolerations[5555555555].key=k appended items
    until the index existed (and the count was read back as an int)."""
    failed(post_render(PLAIN_INPUT + CONFIG_DOC, "--set=tolerations[5555555555].key=k",
                       timeout=20), "list index 5555555555 is too large")
    r = post_render(PLAIN_INPUT + CONFIG_DOC, "--set=tolerations[2].key=k")
    assert r.rc == 0, r.err.decode()
    job = injected(r)["Job"][0]
    assert job["spec"]["template"]["spec"]["tolerations"][2] == {"key": "k"}


def test_a_null_list_item_reads_back_in_the_jobs_config(tmp_path):
    """Found by tests/fuzz/fuzz_config: a null item of a list (here padded in by --set) was
    written as a bare "-", which libfyaml 0.7.12 cannot read in a list at its parent's
    indentation, so the Job's `migrate` could not load its config.yaml."""
    r = post_render(PLAIN_INPUT + CONFIG_DOC, "--set=nodeSelector.x[1]=y")
    assert r.rc == 0, r.err.decode()
    config = injected(r)["ConfigMap"][0]["data"]["config.yaml"]
    assert yaml.safe_load(config)["nodeSelector"] == {"x": [None, "y"]}
    path = tmp_path / "config.yaml"
    path.write_text(config)
    again = post_render(PLAIN_INPUT, f"--config={path}")
    assert again.rc == 0, again.err.decode()


def test_values_nested_deeper_than_libfyaml_reads_are_refused(tmp_path):
    """Found by tests/fuzz/fuzz_config: a --set path of 80 parts rendered a ConfigMap whose
    config.yaml libfyaml (and so the Job's `migrate`) refuses: "Max depth (64) exceeded"."""
    failed(post_render(PLAIN_INPUT + CONFIG_DOC, "--set=podLabels" + ".a" * 40 + "=x"),
           "more than 32 parts")
    deep = "x"
    for _ in range(40):
        deep = {"k": deep}
    path = tmp_path / "deep.yaml"
    path.write_text(yaml.safe_dump({"affinity": deep}))
    failed(post_render(PLAIN_INPUT + CONFIG_DOC, f"--config={path}"),
           "affinity: nested more than 32 levels deep")


def test_set_and_options_must_be_utf8():
    """Found by tests/fuzz/fuzz_config: a --set key that is not UTF-8 ended the process
    with an internal error."""
    failed(post_render(PLAIN_INPUT + CONFIG_DOC, b"--set=podLabels.\x8e=x"), "not UTF-8")
    failed(post_render(PLAIN_INPUT + CONFIG_DOC, b"--release=\xff"), "--release", "not UTF-8")


# --- the stream is cut at marker lines; only what is consumed is read -------------------------

SPELLED_BODY = ("apiVersion: chartreuse.wiremind.io/v1\nimage: {repository: app}\n"
                "databases: [{host: db, user: u, database: d, password: leak-me-pw}]\n")

# Every way YAML lets a document say kind: ChartreuseConfig (what Helm reads, as Go's YAML
# reads it). A pre-filter that missed one would pass the document, and its passwords, on.
KIND_SPELLINGS = {
    "plain": "kind: ChartreuseConfig\n",
    "double-quoted": 'kind: "ChartreuseConfig"\n',
    "single-quoted": "kind: 'ChartreuseConfig'\n",
    "tagged": "kind: !!str ChartreuseConfig\n",
    "anchored": "kind: &k ChartreuseConfig\n",
    "literal-block": "kind: |-\n  ChartreuseConfig\n",
    "folded-block": "kind: >-\n  ChartreuseConfig\n",
    "hex-escape": 'kind: "\\x43hartreuseConfig"\n',
    "unicode-escapes": 'kind: "\\u0043hartreuse\\U00000043onfig"\n',
    "escaped-line-break": 'kind: "Chartreuse\\\n    Config"\n',
    "quoted-key": '"kind": ChartreuseConfig\n',
    "escaped-key": '"\\x6bind": ChartreuseConfig\n',
    "explicit-key": "? kind\n: ChartreuseConfig\n",
    "last": "",  # kind at the end of the document, below
}


@pytest.mark.parametrize("spelling", sorted(KIND_SPELLINGS))
def test_a_chartreuse_config_is_found_in_every_spelling(spelling):
    doc = "---\n" + KIND_SPELLINGS[spelling] + SPELLED_BODY
    if spelling == "last":
        doc = "---\n" + SPELLED_BODY + "kind: ChartreuseConfig\n"
    for args in ((), ("--release=demo", "--namespace=prod")):
        r = ok(post_render(PLAIN_INPUT + doc, *args))
        assert r.out.startswith(PLAIN_INPUT.encode() + b"---\n# Source: chartreuse/")
        assert b"leak-me-pw" not in r.out
        assert injected(r)["Job"]


@pytest.mark.parametrize("stream", [
    "{apiVersion: chartreuse.wiremind.io/v1, kind: ChartreuseConfig, image: {repository: app},"
    " databases: [{host: db, user: u, database: d, password: leak-me-pw}]}\n",
    '{"apiVersion": "chartreuse.wiremind.io/v1", "kind": "ChartreuseConfig", "image": '
    '{"repository": "app"}, "databases": [{"host": "db", "user": "u", "database": "d", '
    '"password": "leak-me-pw"}]}\n',
    "%YAML 1.1\n---\nkind: ChartreuseConfig\n" + SPELLED_BODY,
    "\ufeff---\nkind: ChartreuseConfig\n" + SPELLED_BODY,
    ("---\nkind: ChartreuseConfig\n" + SPELLED_BODY).replace("\n", "\r\n"),
], ids=["flow", "json", "directive", "byte-order-mark", "crlf"])
def test_a_chartreuse_config_is_found_in_every_form_of_document(stream):
    first = stream.startswith("\ufeff")
    r = ok(post_render(stream + PLAIN_INPUT if first else PLAIN_INPUT + "...\n" + stream,
                       "--release=demo", "--namespace=prod"))
    kept = ("\ufeff" + PLAIN_INPUT) if first else PLAIN_INPUT + "...\n"
    assert r.out.startswith(kept.encode() + b"---\n# Source: chartreuse/")  # a directive too
    assert b"leak-me-pw" not in r.out
    assert injected(r)["Job"]


def test_a_stream_with_carriage_returns_alone_is_cut_at_its_markers():
    stream = (PLAIN_INPUT + "---\nkind: ChartreuseConfig\n" + SPELLED_BODY).replace("\n", "\r")
    r = ok(post_render(stream, "--release=demo", "--namespace=prod"))
    assert r.out.startswith(PLAIN_INPUT.replace("\n", "\r").encode() + b"\n---\n# Source: ")
    assert b"leak-me-pw" not in r.out


@pytest.mark.parametrize("doc,why", [
    ("---\nx: &k ChartreuseConfig\nkind: *k\n" + SPELLED_BODY, "aliases are not accepted"),
    ("---\nbase: &b {kind: ChartreuseConfig}\n<<: *b\n" + SPELLED_BODY, "merge key"),
    ("---\nkind: !!binary Q2hhcnRyZXVzZUNvbmZpZw==\n" + SPELLED_BODY, "kind"),
    ("---\nkind: !<tag:yaml.org,2002:binary> Q2hhcnRyZXVzZUNvbmZpZw==\n" + SPELLED_BODY,
     "kind"),
    ("---\nkind: !!bin%61ry Q2hhcnRyZXVzZUNvbmZpZw==\n" + SPELLED_BODY, "kind"),
    ("...\n%TAG !t! tag:yaml.org,2002:bin\n---\nkind: !t!ary Q2hhcnRyZXVzZUNvbmZpZw==\n" +
     SPELLED_BODY, "kind"),
    ("%TAG !t! tag:yaml.org,2002:bin\n---\nkind: !t!ary Q2hhcnRyZXVzZUNvbmZpZw==\n" +
     SPELLED_BODY, "document 2 in demo/templates/deployment.yaml"),
    ("---\na: b\u0085---\u0085kind: ChartreuseConfig\n" + SPELLED_BODY, "second document"),
], ids=["alias", "merge-key", "binary", "verbatim-binary-tag", "escaped-binary-tag",
        "tag-directive", "tag-directive-inside-a-document", "next-line-break"])
def test_a_kind_that_may_be_chartreuse_config_is_never_passed_on(doc, why):
    """Spellings chartreuse can't accept as a config (a config takes no aliases, and base64
    is no way to write a kind) must not pass through either, with their passwords."""
    where = "document 2" if "document 2" in why else "document 3"
    failed(post_render(PLAIN_INPUT + doc, "--release=demo", "--namespace=prod"), why, where)


@pytest.mark.parametrize("doc", [
    "---\nkind: ConfigMap\nmetadata: {name: doc}\ndata:\n  example.yaml: |\n"
    "    kind: ChartreuseConfig\n    image: {repository: x}\n",
    "---\nkind: Example\nmetadata: {name: nested}\nspec: {kind: ChartreuseConfig}\n",
    "---\nkind: ChartreuseConfigs\nmetadata: {name: plural}\n",
    '---\nkind: "Chartreuse\\x20Config"\nmetadata: {name: escaped-space}\n',
    "---\nkind: ChartreuseConfig\nkind: ConfigMap\nmetadata: {name: last-kind-wins}\n",
    '---\nkind: ConfigMap\nmetadata: {name: "a\\\\b \\"ChartreuseConfig\\""}\n',
    "---\nkind: ConfigMap\nmetadata: {name: tags, annotations: {a: !!binary aGk=}}\n",
], ids=["in-a-block-scalar", "nested", "plural", "escaped-space", "last-kind-wins",
        "escaped-quotes", "binary-elsewhere"])
def test_documents_that_only_mention_the_kind_pass_through(doc):
    for args in ((), ("--release=demo", "--namespace=prod")):
        r = ok(post_render(PLAIN_INPUT + doc + CONFIG_DOC, *args))
        assert r.out.startswith((PLAIN_INPUT + doc).encode())


MARKER_LOOKALIKES = """\
---
# Source: demo/templates/lookalikes.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: lookalikes
data:
  block: |
    ---
    ...
    --- kind: ChartreuseConfig
  folded: >
    a
    ---x
  quoted: "a
    --- b"
  plain: a
    --- b
---x: not a marker
----: nor this
...x: nor this
quoted: "a
%b, a directive to no one inside a scalar"
"""


def test_lines_that_look_like_markers_do_not_cut_a_document():
    for args in ((), ("--release=demo", "--namespace=prod")):
        r = ok(post_render(PLAIN_INPUT + MARKER_LOOKALIKES + CONFIG_DOC, *args))
        assert r.out.startswith((PLAIN_INPUT + MARKER_LOOKALIKES).encode())


def test_nothing_is_read_when_release_and_namespace_are_given():
    """With --release and --namespace (what the wrappers pass) no chart document is read
    but those that may be a ChartreuseConfig: a malformed one passes, for Helm to judge."""
    bad = "---\n# Source: demo/templates/bad.yaml\nkind: ConfigMap\nmetadata: {name: [x}\n"
    r = ok(post_render(PLAIN_INPUT + bad + CONFIG_DOC, "--release=demo", "--namespace=prod"))
    assert r.out.startswith((PLAIN_INPUT + bad).encode())
    # Anything still to infer reads the documents again.
    for args in (("--release=demo",), ("--namespace=prod",), ()):
        failed(post_render(PLAIN_INPUT + bad + CONFIG_DOC, *args),
               "stdin: document 3 in demo/templates/bad.yaml, line 2, column 20: "
               "did not find expected ',' or ']'")


def test_nothing_is_read_when_the_chart_config_gives_release_and_namespace():
    bad = "---\nkind: ConfigMap\nmetadata: {name: [x}\n"
    cfg = CONFIG_DOC.replace("databases:", "release: demo\nnamespace: prod\ndatabases:")
    r = ok(post_render(PLAIN_INPUT + bad + cfg))
    assert r.out.startswith((PLAIN_INPUT + bad).encode())
    # One migration without its own release is enough to need inference.
    other = CONFIG_DOC.replace("name: chartreuse", "name: other")
    failed(post_render(PLAIN_INPUT + bad + cfg + other), "document 3, line")


HELM4_DOCUMENT = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: a
  annotations:
    postrenderer.helm.sh/postrender-filename: 'demo/templates/it''s.yaml'
data: {a: [b}
---
"""


def test_errors_name_the_template_helm_4_annotates():
    """Helm 4 writes no "# Source:" line but annotates every document it hands a
    post-renderer with its template; lines count from the document's first line."""
    line = failed(post_render(HELM4_DOCUMENT + PLAIN_INPUT))
    assert line.endswith("stdin: document 1 in demo/templates/it's.yaml, line 7, column 13: "
                         "did not find expected ',' or ']' (while parsing a flow sequence, "
                         "line 7)"), line
    flow = ("---\nkind: ConfigMap\nmetadata: {name: a, annotations: "
            "{postrenderer.helm.sh/postrender-filename: \"demo/templates/flow.yaml\"}}\n"
            "data: {a: [b}\n")
    failed(post_render(PLAIN_INPUT + flow), "document 3 in demo/templates/flow.yaml, line 3")


# --- a chart with duplicate keys, through the real Helm 3 and Helm 4 -----------------------------

DUP_CHART = {
    "Chart.yaml": "apiVersion: v2\nname: dup\nversion: 0.1.0\n",
    "templates/configmap.yaml": """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: elsewhere
  name: dup-settings
  namespace: {{ .Release.Namespace }}
  labels:
    app.kubernetes.io/instance: {{ .Release.Name }}
    app.kubernetes.io/instance: {{ .Release.Name }}
data:
  level: debug
  level: info
""",
    "templates/notes.yaml": "# only a comment: Helm 3 keeps it as a document, Helm 4 drops it\n",
    "templates/chartreuse.yaml": """\
apiVersion: chartreuse.wiremind.io/v1
kind: ChartreuseConfig
image: {repository: registry.example.com/dup, tag: "1.0"}
databases:
  - {host: db, user: app, database: app, passwordSecret: {name: db, key: password}}
""",
}


@pytest.fixture(scope="module", params=[3, 4], ids=["helm3", "helm4"])
def dup_helm(request, tmp_path_factory):
    """A Helm with chartreuse installed, a pass-through post-renderer (`cat`), and a chart
    whose documents hold duplicate keys (helm lint and helm template take them)."""
    from conftest import plugin_source
    from test_helm import Helm
    home = tmp_path_factory.mktemp(f"dup-helm{request.param}")
    helm = Helm(request.param, home)
    helm.run("plugin", "install", str(plugin_source()))
    cat = ["--post-renderer", "/bin/cat"]
    if helm.major == 4:
        plugin = home / "cat-post-render"
        plugin.mkdir()
        (plugin / "plugin.yaml").write_text(
            "apiVersion: v1\ntype: postrenderer/v1\nname: cat-post-render\nversion: 0.1.0\n"
            "runtime: subprocess\nruntimeConfig:\n  platformCommand:\n    - command: /bin/cat\n")
        helm.run("plugin", "install", str(plugin))
        cat = ["--post-renderer", "cat-post-render"]
    chart = home / "dup"
    for name, text in DUP_CHART.items():
        (chart / name).parent.mkdir(parents=True, exist_ok=True)
        (chart / name).write_text(text)
    helm.run("lint", str(chart))
    return helm, chart, cat


def helm_documents(text):
    """Helm's output cut at its "---" lines, each document's text as it printed it."""
    return [d for d in re.split(r"(?m)^---\n", text) if d.strip()]


@pytest.mark.helm
@pytest.mark.parametrize("args", [("--release=dup", "--namespace=ns"), ()],
                         ids=["given", "inferred"])
def test_a_chart_with_duplicate_keys_deploys_through_chartreuse(dup_helm, args):
    """Output byte for byte as through `cat`, apart from the documents chartreuse adds and
    the ChartreuseConfig it consumes (Helm 4: relative to what Helm 4 hands over)."""
    helm, chart, cat = dup_helm
    base = ["template", "dup", str(chart), "--namespace", "ns"]
    through_cat = helm.run(*base, *cat).stdout
    extra = [a for arg in args for a in ("--post-renderer-args", arg)]
    ours = helm.run(*base, *helm.post_renderer_args(), *extra).stdout
    ours_docs = [d for d in helm_documents(ours) if "app.kubernetes.io/name: chartreuse" not in d]
    cat_docs = [d for d in helm_documents(through_cat) if "kind: ChartreuseConfig" not in d]
    assert ours_docs == cat_docs
    assert "  level: debug\n  level: info\n" in ours
    if helm.major == 3:  # nothing between Helm's renderer and its output but chartreuse
        plain = helm.run(*base).stdout
        assert ours_docs == [d for d in helm_documents(plain) if "ChartreuseConfig" not in d]
    jobs = [d for d in yaml.safe_load_all(ours) if d and d["kind"] == "Job"]
    assert [j["metadata"]["name"] for j in jobs] == ["dup-chartreuse-upgrade"]
    assert jobs[0]["metadata"]["namespace"] == "ns"


# --- every error path, with every option that changes what is loaded ------------------------

# A config file that sets neither release nor namespace, so inference still runs.
EXTRA_CONFIG = "stopPods: true\nupgradeJobWeight: \"4\"\n"
OPTIONS = {
    "bare": lambda f: (),
    "config": lambda f: ("--config", str(f)),
    "set": lambda f: ("--set", "ttlSecondsAfterFinished=60"),
    "config+set": lambda f: ("--config", str(f), "--set", "ttlSecondsAfterFinished=60"),
}


@pytest.fixture(params=sorted(OPTIONS))
def options(request, tmp_path):
    f = tmp_path / "extra.yaml"
    f.write_text(EXTRA_CONFIG)
    return OPTIONS[request.param](f)


@pytest.mark.parametrize("stream", ["", "# only a comment\n", "a: [b\n"],
                         ids=["empty", "comment-only", "malformed"])
def test_an_error_before_the_config_files_are_read_is_reported_not_a_crash(stream, options):
    """Found by the wrappers, which always pass a --config: the cleanup walked the array of
    config files, never allocated when the stream was refused first (exit 139)."""
    r = post_render(stream, *options)
    assert r.rc == 1, (r.rc, r.err_lines)
    failed(r, "stdin")


def unlabelled(text):
    return text.replace("app.kubernetes.io/instance: demo", "x: y").replace(", release: demo", "")


# Every other way post-render fails: (stream, extra arguments, what the message says).
ERRORS = {
    "config-candidate-malformed": (PLAIN_INPUT + "---\nkind: ChartreuseConfig\nimage: [x\n",
                                   (), "stdin: document 3, line"),
    "config-duplicate-key": (PLAIN_INPUT + CONFIG_DOC.replace("databases:", "image: {}\ndatabases:"),
                             (), "duplicate key"),
    "config-wrong-type": (PLAIN_INPUT + CONFIG_DOC.replace("databases:", "stopPods: x\ndatabases:"),
                          (), "stopPods: expected true or false"),
    "config-alias": (PLAIN_INPUT + CONFIG_DOC.replace("name: main", "name: &m main\n    alembicSection: *m"),
                     (), "aliases are not accepted"),
    "config-invalid-utf8": (PLAIN_INPUT + CONFIG_DOC.replace("name: main", "name: ma\udcffin"),
                            (), "invalid UTF-8"),
    "two-configs-one-name": (CHART_OUTPUT + CONFIG_DOC, (), "same metadata.name"),
    "chart-document-malformed": (PLAIN_INPUT + "---\nkind: X\nmetadata: {a: [\n" + CONFIG_DOC, (),
                                 "stdin: document 3, line"),
    "ambiguous-release": (CHART_OUTPUT.replace(", release: demo", "").replace(
        "app.kubernetes.io/instance: demo}", "app.kubernetes.io/instance: other}"), (),
        "several releases (demo, other)"),
    "ambiguous-namespace": (CHART_OUTPUT.replace("namespace: prod", "namespace: a", 1), (),
                            "several namespaces (a, prod)"),
    "unknown-release": (unlabelled(PLAIN_INPUT) + CONFIG_DOC, (), "release name is unknown"),
    "nothing-to-migrate": (PLAIN_INPUT, (), "nothing to migrate"),
    "bad-set": (CHART_OUTPUT, ("--set", "stopPods=maybe"), "--set stopPods=maybe"),
    "unwritable-hooks-to": (CHART_OUTPUT, ("--hooks-to", "/nonexistent/dir/hooks.yaml"),
                            "--hooks-to /nonexistent/dir/hooks.yaml"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_every_error_is_one_line_and_exit_1_with_any_options(case, options):
    stream, args, fragment = ERRORS[case]
    raw = stream.encode(errors="surrogateescape")
    r = post_render(raw, *options, *args)
    assert r.rc == 1, (r.rc, r.err_lines)
    failed(r, fragment)


def test_an_unwritable_stdout_is_reported(options):
    import subprocess
    from conftest import BIN, WRAPPER
    with open("/dev/full", "wb") as full:
        p = subprocess.run(WRAPPER + [BIN, "post-render", *options], input=CHART_OUTPUT.encode(),
                           stdout=full, stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 1, p.stderr
    lines = p.stderr.decode().splitlines()
    assert len(lines) == 1 and "cannot write the manifests to stdout" in lines[0], lines


@pytest.mark.parametrize("stream", ["", "---\n", "# c\n"])
def test_unreadable_config_file_with_any_stream(tmp_path, stream):
    for args in (("--config", str(tmp_path / "missing.yaml")),
                 ("--config", str(tmp_path)),
                 ("--config", str(tmp_path / "missing.yaml"), "--set", "stopPods=true")):
        r = post_render(stream or CHART_OUTPUT, *args)
        assert r.rc == 1, (args, r.rc, r.err_lines)
        assert r.out == b"" and len(r.err_lines) == 1, r.err_lines


# --- command line ----------------------------------------------------------------------------

def test_version():
    r = run(["version"])
    assert r.rc == 0
    assert re.fullmatch(r"chartreuse \d+\.\d+\.\d+\n", r.text)


def test_help_for_every_command():
    for cmd in ["post-render", "template", "install", "upgrade", "migrate", "status", "wait",
                "restore", "version"]:
        r = run([cmd, "--help"])
        assert r.rc == 0 and r.text.startswith("usage: chartreuse"), cmd


def test_helm3_style_invocation_without_subcommand():
    r = run(["--release=x", "--namespace=y"], stdin=CHART_OUTPUT)
    assert r.rc == 0
    assert injected(r)["Job"][0]["metadata"]["name"] == "x-chartreuse-upgrade"


def test_invoked_as_chartreuse_post_render(tmp_path):
    import os, subprocess
    from conftest import BIN
    link = tmp_path / "chartreuse-post-render"
    os.symlink(BIN, link)
    p = subprocess.run([str(link), "--release", "z"], input=CHART_OUTPUT.encode(),
                       capture_output=True)
    assert p.returncode == 0, p.stderr
    assert b"z-chartreuse-upgrade" in p.stdout


# --- large streams are scanned in two halves on two cores ------------------------------------

def big_stream(n=12000):
    return "".join(f"---\n# Source: demo/templates/cm-{i}.yaml\napiVersion: v1\nkind: ConfigMap\n"
                   f"metadata:\n  name: cm-{i}\ndata:\n  k: |\n    v{i}\n" for i in range(n))


def test_large_stream_second_half_is_read_like_the_first():
    body = big_stream()
    assert len(body) > 1.2 * 2**20
    text = body + PLAIN_INPUT + CONFIG_DOC  # labels, namespace and config all in the 2nd half
    r = ok(post_render(text))
    assert r.out.startswith((body + PLAIN_INPUT).encode())
    job = injected(r)["Job"][0]
    assert job["metadata"]["name"] == "demo-chartreuse-upgrade"
    assert job["metadata"]["namespace"] == "prod"


def test_large_stream_error_in_second_half_has_stream_numbers():
    body = big_stream()
    text = body + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: [x}\n" + \
        PLAIN_INPUT + CONFIG_DOC
    line = failed(post_render(text), "did not find expected")
    assert "document 12001," in line
    assert f"line {body.count(chr(10)) + 4}" in line


def test_large_stream_errors_in_both_halves_report_the_first():
    body = big_stream()
    bad = "---\n# Source: demo/templates/bad-{}.yaml\nkind: ConfigMap\nmetadata: {{name: [x}}\n"
    text = bad.format(1) + body + bad.format(2) + PLAIN_INPUT + CONFIG_DOC
    failed(post_render(text), "stdin: document 1 in demo/templates/bad-1.yaml, line 2, column")


def loaded_libraries(result):
    """The shared objects the dynamic loader opened, from LD_DEBUG=files."""
    return set(re.findall(r"file=(\S+) \[0\];\s+(?:needed|dynamically loaded)",
                          result.err.decode(errors="replace")))


def test_post_render_loads_neither_libcurl_nor_libpq():
    # Linked the usual way they pull in TLS, Kerberos and LDAP libraries that cost every
    # render milliseconds and megabytes (src/dynlib.h).
    r = post_render(CHART_OUTPUT, env={"LD_DEBUG": "files"}, wrapper=False)
    assert r.rc == 0
    libs = loaded_libraries(r)
    assert any(l.startswith("libc.so") for l in libs), libs
    assert not [l for l in libs if "curl" in l or "libpq" in l or "ssl" in l], libs


def test_a_command_that_needs_libpq_loads_it_on_first_use():
    r = run(["wait", "postgres", "--name", "main", "--url",
             "postgresql://u:p@127.0.0.1:1/db", "--timeout", "0"],
            env={"LD_DEBUG": "files"}, wrapper=False)
    assert "libpq.so.5" in loaded_libraries(r)
    assert "libcurl.so.4" not in loaded_libraries(r)
