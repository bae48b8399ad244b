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
