"""Pod Security: every Pod chartreuse injects passes the "restricted" standard (checked by
the simulator's admission module, tests/k8s_sim/podsecurity.py, itself tested here against
known specs), the podSecurityContext/securityContext/activeDeadlineSeconds settings, and the
simulator refusing a non-compliant Pod in a namespace labelled enforce=restricted."""
import pytest

from conftest import post_render
from k8s_sim import podsecurity
from k8s_sim.api import ApiError
from schemas import object_problems
from test_rbac import CASES, MANIFESTS

RESTRICTED_OK = {
    "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [{"name": "c", "image": "i", "securityContext": {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True}}],
    "volumes": [{"name": "v", "emptyDir": {}}],
}


def test_the_module_accepts_a_compliant_spec():
    assert podsecurity.violations("restricted", RESTRICTED_OK) == []
    assert podsecurity.violations("baseline", {"containers": [{"name": "c"}]}) == []


def test_the_module_refuses_a_bare_container_with_the_real_messages():
    got = podsecurity.violations("restricted", {"containers": [{"name": "c", "image": "i"}]})
    assert got == [
        'allowPrivilegeEscalation != false (container "c" must set '
        'securityContext.allowPrivilegeEscalation=false)',
        'unrestricted capabilities (container "c" must set '
        'securityContext.capabilities.drop=["ALL"])',
        'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true)',
        'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to '
        '"RuntimeDefault" or "Localhost")']


@pytest.mark.parametrize("change, level, part", [
    (lambda s: s.update(hostNetwork=True), "baseline", "host namespaces"),
    (lambda s: s["containers"][0]["securityContext"].update(privileged=True), "baseline",
     "privileged"),
    (lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}), "baseline",
     "hostPath volumes"),
    (lambda s: s["containers"][0]["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]),
     "baseline", "non-default capabilities"),
    (lambda s: s["containers"][0]["securityContext"].update(runAsUser=0), "restricted",
     "runAsUser=0"),
    (lambda s: s["containers"][0]["securityContext"].update(allowPrivilegeEscalation=True),
     "restricted", "allowPrivilegeEscalation"),
    (lambda s: s["securityContext"].update(runAsNonRoot=False), "restricted", "runAsNonRoot"),
    (lambda s: s["volumes"].append({"name": "n", "nfs": {"server": "x", "path": "/"}}),
     "restricted", "restricted volume types"),
    (lambda s: s.update(securityContext={}), "restricted", "seccompProfile"),
])
def test_the_module_refuses_each_violation(change, level, part):
    import copy
    spec = copy.deepcopy(RESTRICTED_OK)
    change(spec)
    assert any(v.startswith(part) for v in podsecurity.violations(level, spec))
    if level == "restricted":
        assert podsecurity.violations("baseline", spec) == []


def render(*args):
    r = post_render(MANIFESTS, "--release", "demo", "--namespace", "prod", *args)
    assert r.rc == 0, r.err.decode()
    return r.docs()


def jobs(docs):
    return [d for d in docs if d.get("kind") == "Job"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_injected_pod_passes_restricted(case):
    args, _ = CASES[case]
    js = jobs(render(*args))
    assert js
    for j in js:
        spec = j["spec"]["template"]["spec"]
        assert podsecurity.violations("restricted", spec) == [], j["metadata"]["name"]
        for c in spec.get("initContainers", []) + spec["containers"]:
            assert c["securityContext"]["runAsNonRoot"] is True
            assert "runAsUser" not in c["securityContext"]  # no user forced


def test_restore_job_and_copy_delivery_pass_restricted():
    args = CASES["before-deployment"][0] + ["--set", "chartreuseImage.delivery=copy"]
    js = jobs(render(*args))
    assert {j["metadata"]["name"].rsplit("-", 1)[1] for j in js} >= {"restore", "upgrade"}
    for j in js:
        assert podsecurity.violations("restricted", j["spec"]["template"]["spec"]) == []


def test_settings_override_and_deadline():
    js = jobs(render(*CASES["default"][0], "--set", "podSecurityContext.runAsUser=1000",
                     "--set", "podSecurityContext.fsGroup=2000",
                     "--set", "securityContext.readOnlyRootFilesystem=true",
                     "--set", "activeDeadlineSeconds=900"))
    (j,) = js
    assert object_problems(j) == []
    assert j["spec"]["activeDeadlineSeconds"] == 900
    pod = j["spec"]["template"]["spec"]
    assert pod["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"},
                                      "runAsUser": 1000, "fsGroup": 2000}
    (migrate,) = pod["containers"]
    assert migrate["securityContext"]["readOnlyRootFilesystem"] is True
    assert migrate["securityContext"]["allowPrivilegeEscalation"] is False
    for c in pod["initContainers"]:  # the setting is for the application container only
        assert "readOnlyRootFilesystem" not in c["securityContext"]
    assert podsecurity.violations("restricted", pod) == []


def test_no_deadline_by_default_and_zero_refused():
    (j,) = jobs(render(*CASES["default"][0]))
    assert "activeDeadlineSeconds" not in j["spec"]
    r = post_render(MANIFESTS, "--release", "demo", "--namespace", "prod",
                    *CASES["default"][0], "--set", "activeDeadlineSeconds=0")
    assert r.rc != 0 and b"activeDeadlineSeconds" in r.err


def restricted_ns(k8s, name="locked"):
    k8s.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": name, "labels": {podsecurity.LABEL: "restricted"}}})
    return name


def test_simulator_refuses_a_non_compliant_pod_with_403(k8s):
    ns = restricted_ns(k8s)
    with pytest.raises(ApiError) as e:
        k8s.put({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "namespace": ns},
                 "spec": {"containers": [{"name": "c", "image": "i"}]}})
    assert e.value.code == 403
    assert e.value.message.startswith(
        'pods "x" is forbidden: violates PodSecurity "restricted:latest": '
        'allowPrivilegeEscalation != false (container "c" must set '
        'securityContext.allowPrivilegeEscalation=false), ')
    k8s.put({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "y", "namespace": ns},
             "spec": RESTRICTED_OK})
    assert k8s.get("pods", "y", ns) is not None


def job_of(spec, name):
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"backoffLimit": 0, "template": {"spec": dict(spec, restartPolicy="Never")}}}


def test_injected_job_gets_its_pod_in_a_restricted_namespace_a_bare_one_does_not(k8s):
    ns = restricted_ns(k8s)
    (injected,) = jobs(render(*CASES["default"][0]))
    injected["metadata"]["namespace"] = ns
    k8s.put(injected)
    name = injected["metadata"]["name"]
    k8s.wait_for(lambda: k8s.objects("pods", ns, f"job-name={name}"), what="the Job's pod")
    bare = job_of({"containers": [{"name": "c", "image": "i"}]}, "bare")
    bare["metadata"]["namespace"] = ns
    k8s.put(bare)  # a workload is admitted (the real server only warns)
    k8s.wait_for(lambda: [e for e in k8s.objects("events", ns)
                          if e["involvedObject"]["name"] == "bare"
                          and e["reason"] == "FailedCreate"], what="FailedCreate")
    (ev,) = [e for e in k8s.objects("events", ns) if e["involvedObject"]["name"] == "bare"]
    assert 'violates PodSecurity "restricted:latest"' in ev["message"]
    assert k8s.objects("pods", ns, "job-name=bare") == []


# --- the migration container runs as the application's Deployment runs the image --------

APP_IMAGE = "registry.example.com/demo:1.0"


def app_deployment(name, image=APP_IMAGE, pod_sc=None, container_sc=None, quoted=False,
                   extra_container=None):
    pod = {"containers": ([extra_container] if extra_container else []) +
           [{"name": "app", "image": image}]}
    if pod_sc is not None:
        pod["securityContext"] = pod_sc
    if container_sc is not None:
        pod["containers"][-1]["securityContext"] = container_sc
    import yaml
    text = yaml.safe_dump({"apiVersion": "apps/v1", "kind": "Deployment",
                           "metadata": {"name": name,
                                        "labels": {"app.kubernetes.io/instance": "demo"}},
                           "spec": {"template": {"spec": pod}}}, sort_keys=False)
    if quoted:  # as a chart's `image: {{ ... | quote }}` writes it
        text = text.replace(f"image: {image}", f'image: "{image}"')
    return text


def migration_pod(manifests, *args):
    r = post_render(manifests, "--release", "demo", "--namespace", "prod",
                    "--set", "image.repository=registry.example.com/demo",
                    "--set-string", "image.tag=1.0", *CASES["default"][0][2:], *args)
    assert r.rc == 0, r.err.decode()
    (j,) = jobs(r.docs())
    assert object_problems(j) == []
    pod = j["spec"]["template"]["spec"]
    (migrate,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in migrate["env"]}
    return pod, migrate, env["CHARTREUSE_SECURITY_CONTEXT_FROM"]


HARDENED_APP = {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"}}


def test_the_migration_container_takes_the_security_context_of_the_deployment_of_its_image():
    manifests = "---\n".join([
        app_deployment("other", image="envoy:1.30", pod_sc={"runAsUser": 5}),
        app_deployment("web", pod_sc=HARDENED_APP, quoted=True,
                       container_sc={"readOnlyRootFilesystem": True,
                                     "allowPrivilegeEscalation": False,
                                     "capabilities": {"drop": ["ALL"]}},
                       extra_container={"name": "proxy", "image": "envoy:1.30"}),
        app_deployment("worker", pod_sc={"runAsUser": 7})])
    pod, migrate, source = migration_pod(manifests)
    assert source == "Deployment web"  # the first that runs the image, quoted or not
    # who runs goes to the migration container only; the rest to the pod
    assert pod["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"},
                                      "fsGroup": 10001}
    assert migrate["securityContext"] == {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
        "readOnlyRootFilesystem": True}
    for c in pod["initContainers"]:  # chartreuse's own keep their image's user
        assert c["securityContext"] == {"allowPrivilegeEscalation": False,
                                        "capabilities": {"drop": ["ALL"]},
                                        "runAsNonRoot": True}
    assert podsecurity.violations("restricted", pod) == []


def test_an_application_running_as_root_keeps_its_user_and_chartreuse_keeps_its_own():
    manifests = app_deployment("web", pod_sc={"runAsUser": 0})
    pod, migrate, source = migration_pod(manifests)
    assert source == "Deployment web"
    assert migrate["securityContext"]["runAsUser"] == 0
    assert "runAsNonRoot" not in migrate["securityContext"]  # it would refuse to start
    assert "runAsUser" not in pod["securityContext"]
    assert all(c["securityContext"]["runAsNonRoot"] for c in pod["initContainers"])
    # what the namespace allows decides: not restricted, as the application itself
    assert podsecurity.violations("restricted", pod) != []
    assert podsecurity.violations("baseline", pod) == []


def test_the_settings_go_over_what_the_deployment_says():
    manifests = app_deployment("web", pod_sc=HARDENED_APP,
                               container_sc={"readOnlyRootFilesystem": True})
    pod, migrate, _ = migration_pod(manifests, "--set", "securityContext.readOnlyRootFilesystem=false",
                                    "--set", "podSecurityContext.fsGroup=3000",
                                    "--set", "securityContext.runAsUser=20000")
    assert pod["securityContext"]["fsGroup"] == 3000
    assert migrate["securityContext"]["readOnlyRootFilesystem"] is False
    assert migrate["securityContext"]["runAsUser"] == 20000


@pytest.mark.parametrize("manifests", [
    pytest.param(app_deployment("web", image="registry.example.com/demo:0.9",
                                pod_sc=HARDENED_APP), id="another-tag"),
    pytest.param(app_deployment("web", pod_sc=HARDENED_APP).replace(
        "kind: Deployment", "kind: StatefulSet"), id="not-a-deployment"),
    pytest.param(app_deployment("web", pod_sc=HARDENED_APP).replace(
        "  name: web\n", "  name: web\n  name: web\n"), id="duplicate-key-passed-over"),
    pytest.param("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
                 f"data: {{note: 'Deployment of {APP_IMAGE}'}}\n", id="only-mentioned"),
    pytest.param("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\n"
                 "spec: {template: {spec: {initContainers: [{name: i, image: "
                 f"'{APP_IMAGE}'}}], containers: [{{name: c, image: other}}]}}}}}}\n",
                 id="init-container-only"),
])
def test_without_a_deployment_of_the_image_it_is_restricted_without_forcing_a_user(manifests):
    pod, migrate, source = migration_pod(manifests)
    assert source == "none"
    assert pod["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert migrate["securityContext"] == {"allowPrivilegeEscalation": False,
                                          "capabilities": {"drop": ["ALL"]},
                                          "runAsNonRoot": True}
    assert podsecurity.violations("restricted", pod) == []
