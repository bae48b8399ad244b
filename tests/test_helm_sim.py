"""The real Helm 3.17 and Helm 4.1 against the simulated API server (tests/k8s_sim): install,
upgrade, `upgrade --install`, rollback and uninstall of a chart with hook Jobs that Helm
waits for, with Helm's default release storage (Secrets, HELM_DRIVER=secret).

Why: chartreuse runs inside Helm releases (a post-install/post-upgrade hook Job), so the
simulator has to be a cluster that Helm itself accepts, for both majors: Helm 3 creates
with POST and updates with strategic merge patches, watches a hook Job until its Complete
or Failed condition, and polls for deletions; Helm 4 uses server-side apply and kstatus
(list+watch with sendInitialEvents, status conditions). The chart is written by the test:
a Deployment, a Service, a ConfigMap, a Secret, a post-install,post-upgrade hook Job
(delete policy before-hook-creation,hook-succeeded) and a pre-upgrade hook Job
(before-hook-creation,hook-failed). A hook is made to fail with the simulator's
`sim.chartreuse.test/exit-code` annotation, without any job runner.
"""
import base64
import gzip
import json
import os
import subprocess
import textwrap

import pytest

from conftest import BIN, EXAMPLE_CHART, helm_path, plugin_source

pytestmark = pytest.mark.helm

TIMEOUT = "60s"

CHART_YAML = "apiVersion: v2\nname: demo\nversion: 0.1.0\nappVersion: \"1.0\"\n"
VALUES_YAML = "image: app:1\nreplicas: 2\nfailHook: false\nfailPreHook: false\ntypo: false\n"
TEMPLATES = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: {{ .Release.Name }}-web
      labels: {app: {{ .Release.Name }}-web}
    {{- if .Values.typo }}
    replicaz: 2
    {{- end }}
    spec:
      replicas: {{ .Values.replicas }}
      selector:
        matchLabels: {app: {{ .Release.Name }}-web}
      template:
        metadata:
          labels: {app: {{ .Release.Name }}-web}
        spec:
          containers:
          - name: web
            image: {{ .Values.image }}
            ports: [{containerPort: 8080}]
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: {{ .Release.Name }}-web
    spec:
      selector: {app: {{ .Release.Name }}-web}
      ports: [{port: 80, targetPort: 8080}]
    ---
    apiVersion: policy/v1
    kind: PodDisruptionBudget
    metadata:
      name: {{ .Release.Name }}-web
    spec:
      minAvailable: 1
      selector:
        matchLabels: {app: {{ .Release.Name }}-web}
    ---
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: {{ .Release.Name }}-cfg
    data:
      image: {{ .Values.image | quote }}
    ---
    apiVersion: v1
    kind: Secret
    metadata:
      name: {{ .Release.Name }}-secret
    stringData:
      password: hunter2
    ---
    apiVersion: batch/v1
    kind: Job
    metadata:
      name: {{ .Release.Name }}-post
      annotations:
        helm.sh/hook: post-install,post-upgrade
        helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
    spec:
      backoffLimit: 0
      template:
        metadata:
          {{- if .Values.failHook }}
          annotations: {sim.chartreuse.test/exit-code: "1"}
          {{- end }}
        spec:
          restartPolicy: Never
          containers:
          - name: post
            image: {{ .Values.image }}
    ---
    apiVersion: batch/v1
    kind: Job
    metadata:
      name: {{ .Release.Name }}-pre
      annotations:
        helm.sh/hook: pre-upgrade
        helm.sh/hook-delete-policy: before-hook-creation,hook-failed
    spec:
      backoffLimit: 0
      template:
        metadata:
          {{- if .Values.failPreHook }}
          annotations: {sim.chartreuse.test/exit-code: "2"}
          {{- end }}
        spec:
          restartPolicy: Never
          containers:
          - name: pre
            image: {{ .Values.image }}
    """)

OBJECTS = (("deploy", "demo-web"), ("svc", "demo-web"), ("pdb", "demo-web"),
           ("cm", "demo-cfg"), ("secret", "demo-secret"))


@pytest.fixture
def sim(k8s):
    yield k8s
    assert not k8s.internal_errors, k8s.internal_errors
    assert not k8s.controller_errors, k8s.controller_errors


@pytest.fixture
def chart(tmp_path):
    path = tmp_path / "demo"
    (path / "templates").mkdir(parents=True)
    (path / "Chart.yaml").write_text(CHART_YAML)
    (path / "values.yaml").write_text(VALUES_YAML)
    (path / "templates" / "all.yaml").write_text(TEMPLATES)
    return path


class Helm:
    """The real Helm binary of one major, with its own homes and a kubeconfig for `sim`."""

    def __init__(self, major, sim, home):
        self.major, self.bin = major, helm_path(major)
        self.env = dict(os.environ, KUBECONFIG=str(sim.kubeconfig(home / "kubeconfig")),
                        HELM_DRIVER="secret")
        for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
            (home / var.lower()).mkdir(parents=True, exist_ok=True)
            self.env[var] = str(home / var.lower())
        for var in ("HELM_PLUGINS", "HELM_BIN", "HELM_NAMESPACE", "HELM_KUBECONTEXT"):
            self.env.pop(var, None)

    def __call__(self, *args, check=True):
        p = subprocess.run([self.bin, *args], capture_output=True, text=True, env=self.env,
                           timeout=120)
        if check:
            assert p.returncode == 0, \
                f"helm {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
        return p


@pytest.fixture
def helm(helm_major, sim, tmp_path):
    return Helm(helm_major, sim, tmp_path / f"helm{helm_major}")


def release_secrets(sim, name):
    """{revision: Secret} of a release, found as Helm finds them (labels owner, name)."""
    return {int(s["metadata"]["labels"]["version"]): s
            for s in sim.objects("secrets", "default", f"owner=helm,name={name}")}


def release(secret):
    """The release record a Secret holds: base64 (the Secret's), base64 (Helm's), gzip."""
    raw = base64.b64decode(base64.b64decode(secret["data"]["release"]))
    return json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)


def image(sim, name):
    return sim.get("deploy", name)["spec"]["template"]["spec"]["containers"][0]["image"]


def job_states(sim, name):
    """What a Job went through: event types and the condition types True at each."""
    return [(etype, [c["type"] for c in (obj.get("status") or {}).get("conditions") or []
                     if c.get("status") == "True"])
            for etype, obj in sim.history("jobs", name)]


def runs(sim, name):
    """How many times a Job was created."""
    return sum(1 for etype, _ in sim.history("jobs", name) if etype == "ADDED")


def test_install_upgrade_fail_rollback_uninstall(sim, helm, chart):
    # --- install: objects, release Secret, the post-install hook ran and was deleted ---
    helm("install", "demo", str(chart), "--timeout", TIMEOUT)
    secrets = release_secrets(sim, "demo")
    assert list(secrets) == [1]
    assert secrets[1]["type"] == "helm.sh/release.v1"
    assert secrets[1]["metadata"]["labels"]["status"] == "deployed"
    assert release(secrets[1])["info"]["status"] == "deployed"
    for kind, name in OBJECTS:
        obj = sim.get(kind, name)
        assert obj is not None, f"{kind}/{name} missing"
        assert obj["metadata"]["annotations"]["meta.helm.sh/release-name"] == "demo"
    assert image(sim, "demo-web") == "app:1"
    assert sim.get("secret", "demo-secret")["data"]["password"] == \
        base64.b64encode(b"hunter2").decode()
    states = job_states(sim, "demo-post")
    assert states[0] == ("ADDED", [])
    assert states[-1][0] == "DELETED" and "Complete" in states[-1][1], states
    completes = [c for _, c in states if "Complete" in c]
    assert completes[0] == ["SuccessCriteriaMet", "Complete"]
    assert sim.get("jobs", "demo-post") is None
    pods = [o for t, o in sim.history("pods") if t == "ADDED"
            and o["metadata"]["labels"].get("job-name") == "demo-post"]
    assert len(pods) == 1
    ref = pods[0]["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["controller"]) == ("Job", "demo-post", True)
    assert pods[0]["metadata"]["name"].startswith("demo-post-")
    sim.wait_for(lambda: not sim.objects("pods", "default", "job-name=demo-post"),
                 what="the hook Job's Pod deleted by the garbage collector")
    assert sim.get("jobs", "demo-pre") is None  # pre-upgrade only

    # --- upgrade with a new value: revision 2, Deployment updated, both hooks ran ---
    helm("upgrade", "demo", str(chart), "--set", "image=app:2", "--timeout", TIMEOUT)
    secrets = release_secrets(sim, "demo")
    assert sorted(secrets) == [1, 2]
    assert secrets[1]["metadata"]["labels"]["status"] == "superseded"
    assert secrets[2]["metadata"]["labels"]["status"] == "deployed"
    assert release(secrets[2])["config"] == {"image": "app:2"}
    assert image(sim, "demo-web") == "app:2"
    assert sim.get("cm", "demo-cfg")["data"]["image"] == "app:2"
    pre = sim.get("jobs", "demo-pre")  # before-hook-creation only: it stays
    assert any(c["type"] == "Complete" and c["status"] == "True"
               for c in pre["status"]["conditions"])
    assert runs(sim, "demo-post") == 2 and sim.get("jobs", "demo-post") is None

    # --- upgrade whose post-upgrade hook fails: Helm fails and names the hook ---
    p = helm("upgrade", "demo", str(chart), "--set", "failHook=true", "--timeout", TIMEOUT,
             check=False)
    assert p.returncode != 0, p.stdout
    assert "demo-post" in p.stderr and "post-upgrade" in p.stderr, p.stderr
    secrets = release_secrets(sim, "demo")
    assert secrets[3]["metadata"]["labels"]["status"] == "failed"
    failed = sim.get("jobs", "demo-post")  # hook-succeeded does not apply: it stays
    conds = [(c["type"], c["reason"]) for c in failed["status"]["conditions"]]
    assert conds == [("FailureTarget", "BackoffLimitExceeded"),
                     ("Failed", "BackoffLimitExceeded")]
    assert failed["status"]["failed"] == 1
    assert [p["status"]["phase"] for p in sim.objects("pods", "default",
                                                      "job-name=demo-post")] == ["Failed"]
    # before-hook-creation: the pre-upgrade Job of revision 2 was deleted, then made again
    assert runs(sim, "demo-pre") == 2

    # --- rollback to revision 1: a new revision with the first values ---
    helm("rollback", "demo", "1", "--timeout", TIMEOUT)
    secrets = release_secrets(sim, "demo")
    assert sorted(secrets) == [1, 2, 3, 4]
    assert secrets[4]["metadata"]["labels"]["status"] == "deployed"
    assert not release(secrets[4]).get("config")  # no --set: the chart's values
    assert image(sim, "demo-web") == "app:1"
    history = helm("history", "demo", "-o", "json").stdout
    assert [(r["revision"], r["status"]) for r in json.loads(history)] == \
        [(1, "superseded"), (2, "superseded"), (3, "failed"), (4, "deployed")]

    # --- a failing pre-upgrade hook: nothing applied, the failed Job deleted (hook-failed) ---
    p = helm("upgrade", "demo", str(chart), "--set", "failPreHook=true,image=app:5",
             "--timeout", TIMEOUT, check=False)
    assert p.returncode != 0 and "pre-upgrade" in p.stderr and "demo-pre" in p.stderr, \
        p.stderr
    assert release_secrets(sim, "demo")[5]["metadata"]["labels"]["status"] == "failed"
    assert image(sim, "demo-web") == "app:1"
    assert [c for _, c in job_states(sim, "demo-pre")][-1][-1] == "Failed"
    assert job_states(sim, "demo-pre")[-1][0] == "DELETED"
    sim.wait_for(lambda: not sim.objects("pods", "default", "job-name=demo-pre"),
                 what="the failed pre-upgrade hook's Pod collected")

    # --- uninstall: the release's objects and Secrets are gone ---
    helm("uninstall", "demo", "--timeout", TIMEOUT)
    for kind, name in OBJECTS:
        assert sim.get(kind, name) is None, f"{kind}/{name} left"
    assert release_secrets(sim, "demo") == {}
    sim.wait_for(lambda: not sim.objects("pods", "default", "app=demo-web"), timeout=10,
                 what="the Deployment's Pods gone")
    # hooks are not part of the release: Helm leaves the Jobs it did not delete by policy
    assert sim.get("jobs", "demo-post") is not None  # failed in revision 3

    # --- what each major sent ---
    deploy_writes = [r for r in sim.request_log
                     if "/deployments" in r.path and r.method in ("POST", "PUT", "PATCH")]
    if helm.major == 4:  # server-side apply, as Helm's field manager
        assert deploy_writes and all(
            r.method == "PATCH" and r.content_type == "application/apply-patch+yaml"
            and r.query.get("fieldManager") == "helm" for r in deploy_writes)
    else:  # create, then three-way strategic merge patches
        assert [r.method for r in deploy_writes][0] == "POST"
        assert {r.content_type for r in deploy_writes[1:]} == \
            {"application/strategic-merge-patch+json"}
    # the release storage is a typed client-go client: protobuf bodies
    release_writes = [r for r in sim.request_log if r.method in ("POST", "PUT")
                      and r.path.endswith(("/secrets", "/secrets/sh.helm.release.v1.demo.v1"))
                      and r.json().get("type") == "helm.sh/release.v1"]
    assert release_writes
    assert {r.content_type for r in release_writes} == {"application/vnd.kubernetes.protobuf"}
    hook_deletes = [r.json() for r in sim.request_log.filter("DELETE", r"/jobs/demo-post$")]
    assert {d.get("propagationPolicy") for d in hook_deletes} == {"Background"}


def test_upgrade_install_new_release_and_wait(sim, helm, chart):
    """`upgrade --install` of a name that has no release installs it; with --wait, Helm
    returns once the Deployment's Pods are ready, and `uninstall --wait` once the objects
    are gone."""
    p = helm("upgrade", "--install", "fresh", str(chart), "--wait", "--timeout", TIMEOUT)
    assert "fresh" in p.stdout
    secrets = release_secrets(sim, "fresh")
    assert list(secrets) == [1]
    assert secrets[1]["metadata"]["labels"]["status"] == "deployed"
    status = sim.get("deploy", "fresh-web")["status"]
    assert status.get("readyReplicas") == 2, status  # ready when Helm returned
    budget = sim.get("pdb", "fresh-web")["status"]
    assert (budget["currentHealthy"], budget["desiredHealthy"]) == (2, 1)
    assert runs(sim, "fresh-post") == 1 and sim.get("jobs", "fresh-post") is None

    helm("uninstall", "fresh", "--wait", "--timeout", TIMEOUT)
    assert sim.get("deploy", "fresh-web") is None
    assert release_secrets(sim, "fresh") == {}


def test_legacy_discovery(helm_major, chart, tmp_path):
    """A server without aggregated discovery (before Kubernetes 1.26): both majors fall back
    to /api, /apis and one document per group version."""
    from k8s_sim import K8sSim
    with K8sSim(aggregated_discovery=False) as s:
        h = Helm(helm_major, s, tmp_path / "home")
        h("install", "old", str(chart), "--timeout", TIMEOUT)
        assert release_secrets(s, "old")[1]["metadata"]["labels"]["status"] == "deployed"
        assert s.request_log.filter("GET", r"^/apis/apps/v1$")  # a group version's document
        h("uninstall", "old", "--timeout", TIMEOUT)
        assert s.get("deploy", "old-web") is None
        assert not s.internal_errors and not s.controller_errors


def test_a_field_the_type_does_not_declare(sim, helm, chart):
    """A misindented field: Helm 3 sends no fieldValidation, so the server drops it with a
    warning that Helm prints; Helm 4 applies server-side, which refuses it."""
    p = helm("install", "typo", str(chart), "--set", "typo=true", "--timeout", TIMEOUT,
             check=False)
    if helm.major == 3:
        assert p.returncode == 0 and 'unknown field "replicaz"' in p.stderr, p.stderr
        assert "replicaz" not in sim.get("deploy", "typo-web")
    else:
        assert p.returncode != 0
        assert ".replicaz: field not declared in schema" in p.stderr, p.stderr
        assert sim.get("deploy", "typo-web") is None


def test_upgrade_after_a_scale(sim, helm, chart):
    """Another manager (chartreuse stopping the Pods) scaled the Deployment through the scale
    subresource. Helm 3's three-way patch puts the chart's replicas back; Helm 4's
    server-side apply (force=false) conflicts on .spec.replicas unless --force-conflicts."""
    helm("install", "demo", str(chart), "--timeout", TIMEOUT)
    sim.scale("deploy", "demo-web", 0, manager="chartreuse")
    p = helm("upgrade", "demo", str(chart), "--set", "image=app:2", "--timeout", TIMEOUT,
             check=False)
    if helm.major == 3:
        assert p.returncode == 0, p.stderr
    else:
        assert p.returncode != 0
        assert 'conflict with "chartreuse"' in p.stderr and ".spec.replicas" in p.stderr
        assert sim.get("deploy", "demo-web")["spec"]["replicas"] == 0
        helm("upgrade", "demo", str(chart), "--set", "image=app:2", "--force-conflicts",
             "--timeout", TIMEOUT)
    d = sim.get("deploy", "demo-web")
    assert d["spec"]["replicas"] == 2 and image(sim, "demo-web") == "app:2"


def test_example_chart_through_chartreuse(sim, helm):
    """The example chart through `helm chartreuse install|upgrade`: every kind an ordinary
    chart and chartreuse emit is accepted (HPAs as autoscaling/v2, ExpectedDeploymentScales
    through the CRD, the migration Job with its ServiceAccount, Role, RoleBinding, Secret
    and ConfigMap), and uninstall removes the release."""
    helm("plugin", "install", str(plugin_source()))
    helm("chartreuse", "install", "shop", str(EXAMPLE_CHART), "--timeout", TIMEOUT)
    for kind, name in (("deploy", "shop-demo-web"), ("deploy", "shop-demo-worker"),
                       ("svc", "shop-demo"), ("secret", "shop-demo-db"),
                       ("hpa", "shop-demo-web"), ("eds", "shop-demo-web"),
                       ("eds", "shop-demo-worker")):
        assert sim.get(kind, name) is not None, f"{kind}/{name} missing"
    # (Helm 4 waited for it; under Helm 3 it is no hook, see below)
    sim.wait_for(lambda: any("Complete" in c for _, c in
                             job_states(sim, "shop-chartreuse-upgrade")),
                 what="the migration Job complete")
    helm("chartreuse", "upgrade", "shop", str(EXAMPLE_CHART), "--timeout", TIMEOUT)
    assert release_secrets(sim, "shop")[2]["metadata"]["labels"]["status"] == "deployed"
    helm("uninstall", "shop", "--timeout", TIMEOUT)
    assert not sim.objects("deploy", "default") and not sim.objects("eds", "default")
    assert release_secrets(sim, "shop") == {}


def test_chartreuse_migration_job_is_a_hook(sim, helm):
    """chartreuse's migration Job is meant to run as a Helm hook: made for each
    install/upgrade, waited for, deleted once it succeeded, so an upgrade with a new image
    runs a new Job.

    Helm 4 does that itself (it post-renders hooks too): the Job and its companions are
    hooks, deleted after the Job succeeded. Helm 3 runs the post-renderer on the non-hook
    manifests only and reads no hook annotation in its output, so under Helm 3 the wrapper
    plays Helm's part: the companions are plain release resources (they outlive the Job),
    and the wrapper creates the Job after Helm, waits for it and deletes it. Without that
    the Job would be a release resource, run on install only, and an upgrade changing its
    Pod template would fail (`spec.template: field is immutable`)."""
    helm("plugin", "install", str(plugin_source()))
    helm("chartreuse", "install", "shop", str(EXAMPLE_CHART), "--timeout", TIMEOUT)
    job = "shop-chartreuse-upgrade"
    assert [t for t, _ in sim.history("jobs", job)][-1:] == ["DELETED"]
    assert any("Complete" in c for _, c in job_states(sim, job))
    companions = (("sa", "shop-chartreuse"), ("roles", "shop-chartreuse"),
                  ("rolebindings", "shop-chartreuse"), ("cm", "shop-chartreuse"))
    for kind, name in companions:
        last = [t for t, _ in sim.history(kind, name)][-1:]
        if helm.major == 3:  # release resources
            assert last != ["DELETED"] and sim.get(kind, name) is not None, (kind, name)
        else:  # made for the hook, deleted after
            assert last == ["DELETED"], (kind, name)
    manifest = helm("get", "manifest", "shop").stdout
    assert f"name: {job}" not in manifest  # never a release resource
    helm("chartreuse", "upgrade", "shop", str(EXAMPLE_CHART), "--set", "image.tag=2.0",
         "--timeout", TIMEOUT)
    assert runs(sim, job) == 2
    assert [t for t, _ in sim.history("jobs", job)][-1:] == ["DELETED"]


def test_chartreuse_upgrade_install_runs_post_install_then_post_upgrade(sim, helm):
    """`upgrade --install` of a new release is an install: under Helm 3 the wrapper runs
    the post-install Jobs, and on the next run the upgrade ones (before-deployment mode:
    the install Job, then the pre-upgrade Job and the restore Job)."""
    helm("plugin", "install", str(plugin_source()))
    args = ("chartreuse", "upgrade", "--install", "shop", str(EXAMPLE_CHART), "--timeout",
            TIMEOUT, "--chartreuse-set", "upgradeBeforeDeployment=true")
    helm(*args)
    assert runs(sim, "shop-chartreuse-install") == 1
    assert runs(sim, "shop-chartreuse-upgrade") == 0
    helm(*args, "--set", "image.tag=2.0")
    assert runs(sim, "shop-chartreuse-install") == 1
    assert runs(sim, "shop-chartreuse-upgrade") == 1
    assert runs(sim, "shop-chartreuse-restore") == 1
    for job in ("shop-chartreuse-install", "shop-chartreuse-upgrade",
                "shop-chartreuse-restore"):
        assert [t for t, _ in sim.history("jobs", job)][-1:] == ["DELETED"], job
    assert release_secrets(sim, "shop")[2]["metadata"]["labels"]["status"] == "deployed"


def failing_job_config(tmp_path):
    path = tmp_path / "fail.yaml"
    path.write_text('metadata:\n  annotations: {"sim.chartreuse.test/exit-code": "3"}\n')
    return str(path)


def test_chartreuse_failed_pre_upgrade_job_stops_the_upgrade(sim, helm, tmp_path):
    """A failed pre-upgrade Job fails the upgrade before Helm applies anything, and is kept
    for inspection; under Helm 3 the wrapper reports it and never runs the upgrade."""
    helm("plugin", "install", str(plugin_source()))
    base = ("chartreuse", "upgrade", "--install", "shop", str(EXAMPLE_CHART), "--timeout",
            TIMEOUT, "--chartreuse-set", "upgradeBeforeDeployment=true")
    helm(*base)
    before = image(sim, "shop-demo-web")
    p = helm(*base, "--set", "image.tag=2.0", "--chartreuse-config",
             failing_job_config(tmp_path), check=False)
    assert p.returncode != 0
    assert "shop-chartreuse-upgrade" in p.stderr
    assert image(sim, "shop-demo-web") == before, "the new spec was applied"
    assert sim.get("jobs", "shop-chartreuse-upgrade") is not None  # kept
    if helm.major == 3:
        assert list(release_secrets(sim, "shop")) == [1]
        assert "helm upgrade was not run" in p.stderr


def test_chartreuse_failed_post_install_job_fails_the_command(sim, helm, tmp_path):
    helm("plugin", "install", str(plugin_source()))
    p = helm("chartreuse", "install", "shop", str(EXAMPLE_CHART), "--timeout", TIMEOUT,
             "--chartreuse-config", failing_job_config(tmp_path), check=False)
    assert p.returncode != 0
    assert "shop-chartreuse-upgrade" in p.stderr
    assert sim.get("jobs", "shop-chartreuse-upgrade") is not None  # kept
    if helm.major == 3:
        assert "kubectl logs job/shop-chartreuse-upgrade -n default" in p.stderr


# --- Helm 3 and Helm 4 on one release ---------------------------------------------------
# Helm 4 applies with the method of the release's last revision (`--server-side=auto`):
# server-side ("ssa", recorded in the release) for a release it installed, client-side for
# one Helm 3 installed or upgraded last (Helm 3 records no method). Helm 4 refuses
# --force-conflicts with client-side apply and records the revision as failed.

@pytest.fixture
def helms(sim, tmp_path):
    """{3: Helm, 4: Helm} on the same simulated cluster and release storage, each with the
    chartreuse plugins installed."""
    out = {}
    for major in (3, 4):
        out[major] = Helm(major, sim, tmp_path / f"helm{major}")
        out[major]("plugin", "install", str(plugin_source()))
    return out


def apply_method(sim, name, revision):
    """What Helm 4 recorded as the revision's apply method (None: Helm 3 wrote it)."""
    return release(release_secrets(sim, name)[revision]).get("apply_method")


def deployment_writes(sim, mark):
    """The Deployment writes after request number `mark` (the scale subresource aside)."""
    return [r for r in list(sim.request_log)[mark:]
            if "/deployments/" in r.path and r.method in ("PATCH", "PUT", "POST")
            and not r.path.endswith("/scale")]


def applies(sim, mark):
    """The server-side applies of Deployments after request number `mark`: [force]."""
    return [r.query.get("force") for r in deployment_writes(sim, mark)
            if r.content_type == "application/apply-patch+yaml"]


def migration_stopped(sim):
    """What a migration leaves behind: chartreuse scaled the worker through the scale
    subresource, so it is the manager of .spec.replicas at a count the chart does not say."""
    sim.scale("deploy", "shop-demo-worker", 0, manager="chartreuse")


def upgrade_after_a_migration(sim, helm, revision, method, *args):
    """After a migration, `helm chartreuse upgrade shop CHART ARGS`: the revision deployed,
    applied by `method` (None: Helm 3 wrote it), the chart's count back over chartreuse's.
    Returns the Deployment writes it sent."""
    migration_stopped(sim)
    mark = len(sim.request_log)
    p = helm("chartreuse", "upgrade", "shop", str(EXAMPLE_CHART), "--timeout", TIMEOUT,
             *args, check=False)
    assert p.returncode == 0, p.stderr
    assert release_secrets(sim, "shop")[revision]["metadata"]["labels"]["status"] == "deployed"
    assert apply_method(sim, "shop", revision) == method
    assert sim.get("deploy", "shop-demo-worker")["spec"]["replicas"] == 1
    return mark


def test_chartreuse_upgrade_of_a_helm3_release_under_helm4_stays_client_side(sim, helms):
    """Installed with Helm 3, upgraded through the wrapper with Helm 4: Helm 4 keeps the
    release client-side, so the wrapper must not pass --force-conflicts (Helm 4 would fail
    with "forceConflicts enabled when serverSideApply disabled" and record a failed
    revision); its three-way patch puts the chart's count back. Then Helm 3 again, and
    Helm 4 once more."""
    helms[3]("chartreuse", "install", "shop", str(EXAMPLE_CHART), "--timeout", TIMEOUT)
    mark = upgrade_after_a_migration(sim, helms[4], 2, "csa", "--set", "image.tag=2.0")
    assert {(r.method, r.content_type) for r in deployment_writes(sim, mark)} == \
        {("PATCH", "application/strategic-merge-patch+json")}
    assert image(sim, "shop-demo-web").endswith(":2.0")
    upgrade_after_a_migration(sim, helms[3], 3, None, "--set", "image.tag=3.0")
    upgrade_after_a_migration(sim, helms[4], 4, "csa", "--set", "image.tag=4.0")
    assert image(sim, "shop-demo-web").endswith(":4.0")


def test_chartreuse_upgrade_of_a_helm4_release_under_helm3_and_back(sim, helms):
    """Installed with Helm 4 (server-side), upgraded with Helm 3 (client-side; its record
    names no method), then with Helm 4, which follows that record and stays client-side,
    until --server-side=true moves the release back to server-side, which auto then keeps;
    there only forcing takes the replicas back from chartreuse."""
    mark = len(sim.request_log)
    helms[4]("chartreuse", "install", "shop", str(EXAMPLE_CHART), "--timeout", TIMEOUT)
    assert apply_method(sim, "shop", 1) == "ssa"
    assert applies(sim, mark)  # (Helm 4 creates a release's objects without forcing)
    upgrade_after_a_migration(sim, helms[3], 2, None, "--set", "image.tag=2.0")
    mark = upgrade_after_a_migration(sim, helms[4], 3, "csa", "--set", "image.tag=3.0")
    assert not applies(sim, mark)
    mark = upgrade_after_a_migration(sim, helms[4], 4, "ssa", "--set", "image.tag=4.0",
                                     "--server-side=true")
    assert applies(sim, mark) and set(applies(sim, mark)) == {"true"}
    mark = upgrade_after_a_migration(sim, helms[4], 5, "ssa", "--set", "image.tag=5.0")
    assert applies(sim, mark) and set(applies(sim, mark)) == {"true"}
    assert [s["metadata"]["labels"]["status"] for _, s in
            sorted(release_secrets(sim, "shop").items())] == ["superseded"] * 4 + ["deployed"]


def test_chartreuse_under_helm4_respects_the_users_apply_flags(sim, helms):
    """The user's --server-side (install's switch, upgrade's value, given before the
    release name too) and --force-conflicts go to Helm as given, and the wrapper adds
    --force-conflicts only where Helm applies server-side."""
    h = helms[4]
    chart = str(EXAMPLE_CHART)
    h("chartreuse", "install", "shop", chart, "--server-side=false", "--timeout", TIMEOUT)
    assert apply_method(sim, "shop", 1) == "csa"
    upgrade_after_a_migration(sim, h, 2, "csa", "--set", "image.tag=2.0")

    # upgrade's --server-side takes a value, here before the release name
    migration_stopped(sim)
    mark = len(sim.request_log)
    h("chartreuse", "upgrade", "--server-side", "true", "shop", chart, "--set",
      "image.tag=3.0", "--timeout", TIMEOUT)
    assert apply_method(sim, "shop", 3) == "ssa"
    assert set(applies(sim, mark)) == {"true"}
    assert sim.get("deploy", "shop-demo-worker")["spec"]["replicas"] == 1

    # back to client-side on a server-side release
    upgrade_after_a_migration(sim, h, 4, "csa", "--server-side", "false", "--set",
                              "image.tag=4.0")

    # the user's --force-conflicts is Helm's to judge: refused with client-side apply
    p = h("chartreuse", "upgrade", "shop", chart, "--force-conflicts", "--timeout", TIMEOUT,
          check=False)
    assert p.returncode != 0
    assert "forceConflicts enabled when serverSideApply disabled" in p.stderr, p.stderr
    assert release_secrets(sim, "shop")[5]["metadata"]["labels"]["status"] == "failed"
    # ...and taken with server-side apply, where it is what wins the replicas back
    mark = upgrade_after_a_migration(sim, h, 6, "ssa", "--force-conflicts",
                                     "--server-side=true")
    assert set(applies(sim, mark)) == {"true"}

    # --force-replace, which Helm refuses beside --force-conflicts: nothing added, so the
    # user sees Helm's own word on it (it replaces with client-side apply only)
    p = h("chartreuse", "upgrade", "shop", chart, "--force-replace", "--timeout", TIMEOUT,
          check=False)
    assert p.returncode != 0
    assert "cannot use server-side apply and force replace together" in p.stderr, p.stderr
    h("chartreuse", "upgrade", "shop", chart, "--force-replace", "--server-side=false",
      "--timeout", TIMEOUT)
    secrets = release_secrets(sim, "shop")
    assert secrets[max(secrets)]["metadata"]["labels"]["status"] == "deployed"


def test_chartreuse_upgrade_install_under_helm4_reads_the_release(sim, helms):
    """`upgrade --install` under Helm 4: no release, or one uninstalled with its history
    kept, is an install (server-side); otherwise the last revision's method."""
    h = helms[4]
    args = ("chartreuse", "upgrade", "--install", "shop", str(EXAMPLE_CHART), "--timeout",
            TIMEOUT)
    h(*args)
    assert apply_method(sim, "shop", 1) == "ssa"
    h("uninstall", "shop", "--keep-history", "--timeout", TIMEOUT)
    mark = len(sim.request_log)
    h(*args)
    assert release_secrets(sim, "shop")[2]["metadata"]["labels"]["status"] == "deployed"
    assert apply_method(sim, "shop", 2) == "ssa" and applies(sim, mark)
    helms[3](*args, "--set", "image.tag=2.0")
    upgrade_after_a_migration(sim, h, 4, "csa", "--install", "--set", "image.tag=3.0")


def test_chartreuse_under_helm4_stops_when_it_cannot_read_the_release(sim, helms, tmp_path):
    """When Helm cannot say how the release was applied, the wrapper says so and runs no
    upgrade (which would fail or apply the wrong way)."""
    bad = tmp_path / "bad-kubeconfig"
    bad.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n"
                   "current-context: nowhere\nusers: []\n")
    before = len(sim.request_log)
    p = helms[4]("chartreuse", "upgrade", "shop", str(EXAMPLE_CHART), "--kubeconfig",
                 str(bad), check=False)
    assert p.returncode != 0
    assert "cannot read how release shop in namespace default was last applied" in p.stderr
    assert "nothing was changed" in p.stderr
    assert len(sim.request_log) == before


@pytest.mark.parametrize("upgrading_major", [3, 4], ids=["helm3", "helm4"])
def test_chartreuse_upgrade_of_a_release_whose_job_is_a_release_resource(sim, helms,
                                                                        upgrading_major):
    """A Helm 3 release installed by an older chartreuse (plain --post-renderer, no
    --hooks-to): its migration Job and companions are release resources. Upgraded through
    the wrapper (either major), Helm deletes that Job as no longer in the manifest and the
    migration Job runs as a hook: created anew, complete, deleted."""
    job = "shop-chartreuse-upgrade"
    helms[3]("install", "shop", str(EXAMPLE_CHART), "--timeout", TIMEOUT,
             "--post-renderer", BIN, "--post-renderer-args", "post-render",
             "--post-renderer-args", "--release=shop",
             "--post-renderer-args", "--namespace=default")
    assert f"name: {job}" in helms[3]("get", "manifest", "shop").stdout
    sim.wait_for(lambda: any("Complete" in c for _, c in job_states(sim, job)),
                 what="the release's migration Job complete")
    migration_stopped(sim)
    helms[upgrading_major]("chartreuse", "upgrade", "shop", str(EXAMPLE_CHART),
                           "--set", "image.tag=2.0", "--timeout", TIMEOUT)
    assert release_secrets(sim, "shop")[2]["metadata"]["labels"]["status"] == "deployed"
    assert f"name: {job}" not in helms[3]("get", "manifest", "shop").stdout
    assert runs(sim, job) == 2
    assert [t for t, _ in sim.history("jobs", job)][-1:] == ["DELETED"]
    created = [o for t, o in sim.history("jobs", job) if t == "ADDED"][-1]
    assert created["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":2.0")
    assert any("Complete" in c for _, c in job_states(sim, job)[-3:])
    assert sim.get("deploy", "shop-demo-worker")["spec"]["replicas"] == 1
    if upgrading_major == 4:
        assert apply_method(sim, "shop", 2) == "csa"
