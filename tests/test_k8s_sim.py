"""The simulated API server (tests/k8s_sim) checked against the real kubectl (1.32 from the
Helm 3 layer, 1.35 from the Helm 4 layer) and at the wire level.

If the simulator drifts from what a real API server answers, the chartreuse tests built on
it prove nothing; kubectl is an independent, real client, so whatever it can do against the
simulator (discover `eds`, list with selectors, scale through the subresource, watch, wait
for deletion, create, replace, apply) is evidence the simulator speaks Kubernetes."""
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from k8s_sim import K8sSim
from k8s_sim.client import Client
from k8s_sim.jobrunner import Image, JobRunner

# It runs the kubectl of the Helm layers and never chartreuse's binary, so the sanitizer
# and valgrind passes (which exclude "helm") have nothing to add by running it again.
pytestmark = pytest.mark.helm

REPO = Path(__file__).resolve().parent.parent
KUBECTL = {"1.32": REPO / ".cache" / "helm" / "v3" / "kubectl",
           "1.35": REPO / ".cache" / "helm" / "v4" / "kubectl"}
STOP_ANNOTATION = "sim.chartreuse.test/stop-delay"


def deployment(name, replicas=1, labels=None, annotations=None, image="app:1"):
    meta = {"name": name, "labels": {"app.kubernetes.io/instance": "demo",
                                     **(labels or {})}}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": name, "image": image}]}}}}


def eds(name, scale, priority=None):
    spec = {"deploymentName": name, "expectedScale": scale}
    if priority is not None:
        spec["priority"] = priority
    return {"apiVersion": "wiremind.io/v1", "kind": "ExpectedDeploymentScale",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/instance": "demo"}},
            "spec": spec}


class Kubectl:
    def __init__(self, binary, kubeconfig, home):
        if not binary.exists():
            pytest.fail(f"{binary} is missing: run scripts/get-helm.sh (make helm)")
        self.binary, self.kubeconfig, self.home = str(binary), str(kubeconfig), home

    def argv(self, *args):
        return [self.binary, "--kubeconfig", self.kubeconfig,
                "--cache-dir", str(self.home / "cache"), *args]

    def env(self):
        return dict(os.environ, HOME=str(self.home), KUBECONFIG=self.kubeconfig)

    def __call__(self, *args, check=True, timeout=15, stdin=None):
        proc = subprocess.run(self.argv(*args), capture_output=True, text=True,
                              timeout=timeout, env=self.env(), input=stdin)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def popen(self, *args):
        return subprocess.Popen(self.argv(*args), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env())


@pytest.fixture
def sim(k8s):
    yield k8s
    assert not k8s.internal_errors, k8s.internal_errors
    assert not k8s.controller_errors, k8s.controller_errors


@pytest.fixture(params=["1.32", "1.35"])
def kubectl(request, sim, tmp_path):
    return Kubectl(KUBECTL[request.param], sim.kubeconfig(tmp_path / "kubeconfig"), tmp_path)


@pytest.fixture
def kubectl132(sim, tmp_path):
    return Kubectl(KUBECTL["1.32"], sim.kubeconfig(tmp_path / "kubeconfig"), tmp_path)


def status(sim, name):
    return (sim.get("deploy", name) or {}).get("status") or {}


def names(doc):
    return sorted(i["metadata"]["name"] for i in doc["items"])


# --- kubectl ----------------------------------------------------------------------------

def test_kubectl_get_with_selectors_and_short_names(sim, kubectl):
    sim.put(deployment("web", 2))
    sim.put(deployment("worker", 1, labels={"tier": "bg"}))
    other = deployment("other", 1)
    other["metadata"]["labels"] = {"release": "demo"}
    sim.put(other)
    sim.put(eds("web", 2, priority=1))
    sim.put(eds("worker", 1))

    def get(*sel):
        return names(json.loads(kubectl("get", "deploy", *sel, "-o", "json").stdout))
    assert get("-l", "app.kubernetes.io/instance=demo") == ["web", "worker"]
    assert get("-l", "release==demo") == ["other"]
    assert get("-l", "app.kubernetes.io/instance in (demo),tier!=bg") == ["web"]
    assert get("-l", "tier notin (bg)") == ["other", "web"]
    assert get("-l", "!tier,app.kubernetes.io/instance") == ["web"]
    assert get("--field-selector", "metadata.name=worker") == ["worker"]

    out = kubectl("get", "eds").stdout.splitlines()
    assert out[0].split()[:5] == ["NAME", "DEPLOYMENT", "EXPECTED", "SCALE", "PRIORITY"]
    rows = {l.split()[0]: l.split()[1:4] for l in out[1:]}
    assert rows == {"web": ["web", "2", "1"], "worker": ["worker", "1", "0"]}  # default 0

    sim.wait_for(lambda: status(sim, "web").get("readyReplicas") == 2, what="web ready")
    table = kubectl("get", "deploy", "web").stdout.splitlines()
    assert table[0].split()[:4] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE"]
    assert table[1].split()[:4] == ["web", "2/2", "2", "2"]
    err = kubectl("get", "deploy", "-l", "a in (b", check=False)
    assert err.returncode != 0


def test_kubectl_scale_to_zero_waits_for_the_stop_delay(sim, kubectl):
    sim.put(deployment("web", 3, annotations={STOP_ANNOTATION: "0.6"}))
    sim.wait_for(lambda: len([p for p in sim.pods_of("web")
                              if p["status"]["phase"] == "Running"]) == 3, what="3 running")
    t0 = time.monotonic()
    assert "scaled" in kubectl("scale", "deploy/web", "--replicas=0").stdout
    # right after the scale the Pods are still there, Terminating
    pods = kubectl("get", "pods", "-l", "app=web").stdout
    assert pods.count("Terminating") == 3, pods
    assert sim.get("deploy", "web")["spec"]["replicas"] == 0
    kubectl("wait", "--for=delete", "pod", "-l", "app=web", "--timeout=10s")
    assert time.monotonic() - t0 >= 0.55
    assert sim.pods_of("web") == []
    sim.wait_for(lambda: "replicas" not in status(sim, "web"))
    scale = [r for r in sim.request_log.filter("PATCH", r"/deployments/web/scale$")]
    assert len(scale) == 1 and scale[0].json() == {"spec": {"replicas": 0}}

    kubectl("scale", "deploy/web", "--replicas=2")
    sim.wait_for(lambda: status(sim, "web").get("readyReplicas") == 2)
    pods = sim.pods_of("web")
    assert len(pods) == 2
    rs = sim.objects("replicasets")
    assert [r["spec"]["replicas"] for r in rs] == [2]
    for p in pods:
        assert p["metadata"]["labels"]["app"] == "web"
        (ref,) = p["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["uid"]) == ("ReplicaSet", rs[0]["metadata"]["uid"])


def test_kubectl_watch_shows_pods_come_and_go(sim, kubectl):
    sim.put(deployment("web", 0))
    sim.settle()
    w = kubectl.popen("get", "pods", "-w", "--request-timeout=20s")
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(w.stdout), daemon=True)
    reader.start()
    try:
        sim.wait_for(lambda: sim.request_log.filter("GET", "/pods$", watch=True),
                     what="kubectl watching")
        kubectl("scale", "deploy/web", "--replicas=2")
        sim.wait_for(lambda: len([p for p in sim.pods_of("web")
                                  if p["status"]["phase"] == "Running"]) == 2)
        kubectl("scale", "deploy/web", "--replicas=0")
        sim.wait_for(lambda: not sim.pods_of("web"), what="pods gone")
        time.sleep(0.2)
    finally:
        w.terminate()
        w.wait(timeout=5)
        reader.join(timeout=5)
    text = "".join(lines)
    for state in ("Pending", "ContainerCreating", "Running", "Terminating"):
        assert state in text, text
    pods = {l.split()[0] for l in text.splitlines() if l.startswith("web-")}
    assert len(pods) == 2, text


def test_kubectl_create_and_stale_replace_conflict(sim, kubectl, tmp_path):
    manifest = tmp_path / "m.yaml"
    manifest.write_text(yaml.safe_dump_all([deployment("api", 1), eds("api", 1, 3),
                                            {"apiVersion": "v1", "kind": "ConfigMap",
                                             "metadata": {"name": "cfg"},
                                             "data": {"a": "1"}}]))
    out = kubectl("create", "-f", str(manifest)).stdout
    assert "deployment.apps/api created" in out
    assert "expecteddeploymentscale.wiremind.io/api created" in out
    again = kubectl("create", "-f", str(manifest), check=False)
    assert again.returncode != 0 and "already exists" in again.stderr

    stale = tmp_path / "cm.yaml"
    stale.write_text(kubectl("get", "cm", "cfg", "-o", "yaml").stdout)
    kubectl("patch", "cm", "cfg", "-p", '{"data":{"a":"2"}}')
    res = kubectl("replace", "-f", str(stale), check=False)
    assert res.returncode != 0
    assert "the object has been modified" in res.stderr
    assert sim.request_log.filter("PUT", "/configmaps/cfg$", status=409)
    assert sim.get("cm", "cfg")["data"] == {"a": "2"}


def test_kubectl_apply_client_and_server_side(sim, kubectl132, tmp_path):
    kubectl = kubectl132
    manifest = tmp_path / "m.yaml"
    manifest.write_text(yaml.safe_dump(deployment("api", 1, image="api:1")))
    kubectl("apply", "-f", str(manifest))
    manifest.write_text(yaml.safe_dump(deployment("api", 1, image="api:2")))
    kubectl("apply", "-f", str(manifest))
    d = sim.get("deploy", "api")
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "api:2"
    assert d["metadata"]["generation"] == 2
    assert "kubectl.kubernetes.io/last-applied-configuration" in d["metadata"]["annotations"]
    patches = sim.request_log.filter("PATCH", "/deployments/api$")
    assert patches[-1].content_type == "application/strategic-merge-patch+json"

    kubectl("apply", "--server-side", "-f", str(manifest))
    kubectl("scale", "deploy/api", "--replicas=3")
    manifest.write_text(yaml.safe_dump(deployment("api", 2, image="api:2")))
    res = kubectl("apply", "--server-side", "-f", str(manifest), check=False)
    assert res.returncode != 0 and ".spec.replicas" in res.stderr, res.stderr
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(manifest))
    assert sim.get("deploy", "api")["spec"]["replicas"] == 2


def test_kubectl_waits_for_a_job_and_deletes_it(sim, kubectl, tmp_path):
    manifest = tmp_path / "job.yaml"
    manifest.write_text(yaml.safe_dump({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "m", "image": "app:1"}]}}}}))
    kubectl("create", "-f", str(manifest))
    kubectl("wait", "--for=condition=complete", "job/migrate", "--timeout=10s")
    row = kubectl("get", "job", "migrate", "--no-headers").stdout.split()
    assert row[1:3] == ["Complete", "1/1"], row
    assert "Completed" in kubectl("get", "pods", "-l", "job-name=migrate").stdout
    kubectl("delete", "job/migrate", "--wait", "--timeout=10s")
    sim.wait_for(lambda: not sim.objects("pods"), what="the Job's Pod collected")


def test_kubectl_sees_injected_faults(sim, kubectl132):
    kubectl = kubectl132
    sim.put(deployment("web", 1))
    kubectl("get", "deploy")  # warm the discovery cache
    f = sim.fault("GET", r"/deployments$", status=500, times=None, message="etcd is sad")
    res = kubectl("get", "deploy", check=False)
    assert res.returncode != 0 and "etcd is sad" in res.stderr
    assert f.hits >= 1
    sim.clear_faults()

    # one 429 with Retry-After: client-go waits and retries, the command succeeds
    f = sim.fault("GET", r"/deployments$", status=429, retry_after=1)
    t0 = time.monotonic()
    assert "web" in kubectl("get", "deploy").stdout
    assert f.hits == 1 and time.monotonic() - t0 >= 0.9

    sim.fault("PATCH", r"/scale$", drop=True, times=None)
    res = kubectl("scale", "deploy/web", "--replicas=0", check=False)
    assert res.returncode != 0
    assert sim.get("deploy", "web")["spec"]["replicas"] == 1
    sim.clear_faults()

    sim.fault("GET", r"/deployments/web$", delay=2)
    res = kubectl("get", "deploy", "web", "--request-timeout=0.4s", check=False)
    assert res.returncode != 0
    assert [r.status for r in sim.request_log.filter("PATCH", r"/scale$")] == [0]


def raw_exchange(sim, method, path, body=None):
    """The raw bytes of one answer, read until the server closes: what a cut leaves."""
    import socket
    import ssl
    ctx = ssl.create_default_context(cafile=sim.ca_path)
    with socket.create_connection((sim.host, sim.port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname=sim.host) as t:
            data = json.dumps(body).encode() if body is not None else b""
            t.sendall(f"{method} {path} HTTP/1.1\r\nHost: {sim.host}\r\n"
                      f"Authorization: Bearer {sim.token}\r\nContent-Type: "
                      f"application/merge-patch+json\r\nContent-Length: {len(data)}\r\n"
                      f"\r\n".encode() + data)
            out = b""
            while True:
                try:
                    chunk = t.recv(65536)
                except (ssl.SSLError, OSError):
                    break
                if not chunk:
                    break
                out += chunk
            return out


def test_cut_answers_are_cut_where_asked_after_the_write_applied(sim):
    sim.put(deployment("web", 2))
    scale = "/apis/apps/v1/namespaces/default/deployments/web/scale"
    sim.fault("PATCH", scale + "$", cut="header")
    out = raw_exchange(sim, "PATCH", scale, {"spec": {"replicas": 1}})
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\n\r\n" not in out
    assert sim.get("deploy", "web")["spec"]["replicas"] == 1, "carried out, then cut"
    sim.fault("GET", r"/deployments/web$", cut="body")
    out = raw_exchange(sim, "GET", "/apis/apps/v1/namespaces/default/deployments/web")
    head, _, body = out.partition(b"\r\n\r\n")
    length = int(dict(l.split(b": ", 1) for l in head.split(b"\r\n")[1:])[b"Content-Length"])
    assert 0 < len(body) < length
    assert [r.fault for r in sim.request_log if r.fault] == ["cut header", "cut body"]
    assert [r.status for r in sim.request_log if r.fault] == [0, 0]


@pytest.mark.parametrize("cut", ["header", "chunk", "event"])
def test_a_watch_is_cut_where_asked(sim, cut):
    sim.put(deployment("web", 1))
    sim.fault("GET", "/pods", query="watch=", cut=cut, cut_after=1)
    out = raw_exchange(sim, "GET", "/api/v1/namespaces/default/pods?watch=1&"
                       "resourceVersion=0&allowWatchBookmarks=true")
    head, _, body = out.partition(b"\r\n\r\n")
    if cut == "header":
        assert not body and b"Transfer-Encoding: chunked" not in head
        return
    size, _, rest = body.partition(b"\r\n")  # the first chunk: one whole event
    first = rest[:int(size, 16)]
    assert json.loads(first)["type"] == "ADDED"
    size2, _, rest2 = rest[int(size, 16) + 2:].partition(b"\r\n")
    if cut == "chunk":
        assert len(rest2) < int(size2, 16), "the chunk is announced whole, half of it comes"
    else:
        part = rest2[:int(size2, 16)]
        assert rest2[int(size2, 16):] == b"\r\n", "a whole chunk, no end of stream"
        assert part and not part.endswith(b"\n"), "holding half an event line"


def test_admission_denial_is_a_422_and_changes_nothing(sim, kubectl132):
    sim.put(deployment("web", 2))
    sim.admission_deny("PATCH", r"/deployments/web$", policy="freeze",
                       reason="annotations are frozen")
    res = kubectl132("annotate", "deploy/web", "x=y", check=False)
    assert res.returncode != 0
    assert ("ValidatingAdmissionPolicy 'freeze' with binding 'freeze-binding' denied "
            "request: annotations are frozen") in res.stderr
    assert "x" not in (sim.get("deploy", "web")["metadata"].get("annotations") or {})
    assert [r.status for r in sim.request_log.filter("PATCH", "/deployments/web$")] == [422]


@pytest.mark.parametrize("user,ca", [("token", "data"), ("token-file", "file"),
                                     ("cert", "data"), ("cert-file", "file"),
                                     ("exec", "data"), ("token", "insecure")])
def test_kubeconfig_variants(sim, tmp_path, user, ca):
    kc = sim.kubeconfig(tmp_path / "kc", user=user, ca=ca, namespace="team", cn="alice",
                        groups=("devs",))
    sim.put({"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "x", "namespace": "team"}})
    kubectl = Kubectl(KUBECTL["1.32"], kc, tmp_path)
    assert "x " in kubectl("get", "cm").stdout  # the context's namespace
    users = {r.user for r in sim.request_log}
    assert users == ({"alice"} if user.startswith("cert") else {"sim-admin"})
    if user == "exec":
        assert int(Path(str(kc) + ".exec-count").read_text()) >= 1


def test_bad_credentials_are_401(sim, tmp_path):
    kc = sim.kubeconfig(tmp_path / "kc", token="wrong")
    res = Kubectl(KUBECTL["1.32"], kc, tmp_path)("get", "pods", check=False)
    assert res.returncode != 0 and "You must be logged in" in res.stderr
    r = Client(sim, token="").get("/api/v1/namespaces/default/pods")
    assert r.status == 401
    assert r.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {},
                        "status": "Failure", "message": "Unauthorized",
                        "reason": "Unauthorized", "code": 401}
    # token rotation: the old one stops working, the new one works
    sim.add_token("rotated", "sim-admin")
    sim.revoke_token(sim.token)
    assert Client(sim).get("/api/v1/pods").status == 401
    assert Client(sim, token="rotated").get("/api/v1/pods").status == 200


def test_legacy_discovery_and_no_openapi(tmp_path):
    with K8sSim(aggregated_discovery=False, openapi=False) as s:
        s.put(eds("web", 1))
        kubectl = Kubectl(KUBECTL["1.32"], s.kubeconfig(tmp_path / "kc"), tmp_path)
        assert "web" in kubectl("get", "eds").stdout
        assert s.request_log.filter("GET", "^/apis/wiremind.io/v1$")
        manifest = tmp_path / "cm.yaml"
        manifest.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                                            "metadata": {"name": "c"}}))
        kubectl("create", "--validate=false", "-f", str(manifest))
        assert s.get("cm", "c") is not None


def test_plain_http():
    with K8sSim(tls=False) as s:
        assert s.url.startswith("http://")
        assert Client(s).get("/version").json()["major"] == "1"


def log_job(name="logs"):
    """A Job whose Pod prints to stdout and stderr in three containers, then fails."""
    def sh(cname, script):
        return {"name": cname, "image": "tools", "command": ["/bin/sh", "-c", script]}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"backoffLimit": 0, "template": {"spec": {
                "restartPolicy": "Never",
                "initContainers": [sh("init", "echo from init")],
                "containers": [sh("main", "echo one; echo two; echo oops >&2; exit 3"),
                               sh("side", "printf 'no newline'")]}}}}


@pytest.fixture
def log_pod(sim, tmp_path):
    """The Pod of log_job(), run to its end by a JobRunner, which captured its output."""
    JobRunner(sim, images={"tools": Image()}, workdir=tmp_path / "pods", install=True)
    sim.put(log_job())
    sim.wait_for(lambda: (sim.get("jobs", "logs").get("status") or {}).get("failed"),
                 timeout=15, what="the Job failed")
    return sim.objects("pods", "default", "job-name=logs")[0]["metadata"]["name"]


def test_kubectl_logs_shows_what_the_job_runner_captured(sim, kubectl, log_pod):
    sim.request_log.clear()
    out = kubectl("logs", "job/logs")
    assert out.stdout == "one\ntwo\noops\n"  # stdout and stderr, interleaved
    assert 'Defaulted container "main" out of: main, side, init (init)' in out.stderr
    # kubectl names the container (its default) and the server serves text/plain
    req = [r for r in sim.request_log if r.path.endswith("/log")]
    assert [(r.path, r.query, r.status) for r in req] == \
        [(f"/api/v1/namespaces/default/pods/{log_pod}/log", {"container": "main"}, 200)]
    assert kubectl("logs", log_pod, "-c", "side").stdout == "no newline"
    assert kubectl("logs", log_pod, "-c", "init").stdout == "from init\n"
    assert kubectl("logs", log_pod, "-c", "main", "--tail=1").stdout == "oops\n"
    assert kubectl("logs", log_pod, "-c", "main", "--tail=0").stdout == ""
    assert kubectl("logs", log_pod, "-c", "main", "--limit-bytes=5").stdout == "one\nt"
    # kubectl 1.35 fetches the containers' logs at once, so they come in any order, each
    # container's lines in theirs ("side" ends without a newline: what follows runs on).
    out = kubectl("logs", log_pod, "--all-containers", "--prefix").stdout
    main = [out.find(f"[pod/{log_pod}/main] {line}\n") for line in ("one", "two", "oops")]
    assert -1 not in main and main == sorted(main), out
    rest = out
    for part in (f"[pod/{log_pod}/init] from init\n", f"[pod/{log_pod}/main] one\n",
                 f"[pod/{log_pod}/main] two\n", f"[pod/{log_pod}/main] oops\n",
                 f"[pod/{log_pod}/side] no newline"):
        assert part in rest, (part, out)
        rest = rest.replace(part, "", 1)
    assert rest == "", out
    res = kubectl("logs", log_pod, "-c", "main", "--previous", check=False)
    assert res.returncode != 0 and "Error from server (BadRequest): previous terminated " \
        f'container "main" in pod "{log_pod}" not found' in res.stderr, res.stderr
    res = kubectl("logs", "no-such-pod", check=False)
    assert res.returncode != 0 and 'pods "no-such-pod" not found' in res.stderr, res.stderr
    # a Pod the simulated kubelet runs itself printed nothing
    sim.put(deployment("web"))
    sim.wait_for(lambda: [p for p in sim.pods_of("web")
                          if (p.get("status") or {}).get("phase") == "Running"],
                 what="the web Pod running")
    assert kubectl("logs", "deploy/web").stdout == ""


def test_pod_log_errors_at_the_wire(sim, log_pod):
    c = Client(sim)
    path = f"/api/v1/namespaces/default/pods/{log_pod}/log"
    r = c.get(path, query={"container": "main", "tailLines": "2"})
    assert (r.status, r.headers["Content-Type"], r.body) == (200, "text/plain", b"two\noops\n")
    # several containers and none named: 400 listing them all, init containers first
    r = c.get(path)
    assert (r.status, r.json()["reason"], r.json()["message"]) == \
        (400, "BadRequest", f"a container name must be specified for pod {log_pod}, "
         "choose one of: [init main side]")
    r = c.get(path, query={"container": "nope"})
    assert (r.status, r.json()["message"]) == \
        (400, f"container nope is not valid for pod {log_pod}")
    r = c.get("/api/v1/namespaces/default/pods/gone/log")
    assert (r.status, r.json()["reason"], r.json()["message"]) == \
        (404, "NotFound", 'pods "gone" not found')
    # the options are checked first, as PodLogOptions
    r = c.get(path, query={"tailLines": "-1"})
    assert (r.status, r.json()["details"]["kind"]) == (422, "PodLogOptions")
    assert c.get(path, query={"container": "main", "limitBytes": "0"}).status == 422
    assert c.get(path, query={"container": "main", "tailLines": "x"}).status == 400
    # read-only, and listed so in discovery
    assert c.request("PUT", path, {"a": 1}).status == 405
    core = {r["name"]: r for r in c.get("/api/v1").json()["resources"]}
    assert (core["pods/log"]["kind"], core["pods/log"]["verbs"]) == ("Pod", ["get"])


# --- wire level -------------------------------------------------------------------------

def test_discovery_and_openapi_documents(sim):
    c = Client(sim)
    assert c.get("/api").json()["versions"] == ["v1"]
    groups = {g["name"] for g in c.get("/apis").json()["groups"]}
    assert {"apps", "batch", "autoscaling", "wiremind.io", "rbac.authorization.k8s.io",
            "apiextensions.k8s.io"} <= groups
    apps = {r["name"]: r for r in c.get("/apis/apps/v1").json()["resources"]}
    assert apps["deployments"]["shortNames"] == ["deploy"]
    assert (apps["deployments/scale"]["group"], apps["deployments/scale"]["kind"]) == \
        ("autoscaling", "Scale")
    assert "deployments/status" in apps
    w = {r["name"]: r for r in c.get("/apis/wiremind.io/v1").json()["resources"]}
    assert w["expecteddeploymentscales"]["shortNames"] == ["eds"]
    assert w["expecteddeploymentscales"]["namespaced"] is True
    batch = {r["name"] for r in c.get("/apis/batch/v1").json()["resources"]}
    assert {"jobs", "jobs/status"} <= batch
    hpa = {r["name"] for r in c.get("/apis/autoscaling/v2").json()["resources"]}
    assert "horizontalpodautoscalers/status" in hpa
    agg = c.get("/apis", accept="application/json;g=apidiscovery.k8s.io;v=v2;"
                "as=APIGroupDiscoveryList,application/json")
    assert agg.headers["Content-Type"].startswith("application/json;g=apidiscovery.k8s.io")
    assert agg.json()["kind"] == "APIGroupDiscoveryList"

    index = c.get("/openapi/v3").json()["paths"]
    doc = c.get(index["apis/apps/v1"]["serverRelativeURL"]).json()
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1",
                                                        "kind": "Deployment"}
    assert {"name": "fieldValidation", "in": "query"}.items() <= \
        next(p for p in patch["parameters"] if p["name"] == "fieldValidation").items()
    assert c.get("/openapi/v2").status == 404


def test_hpa_generation_moves_with_its_spec_only(sim):
    """An HPA's metadata.generation, as a real API server with the HPAGeneration feature
    gate keeps it: 1 at creation, one more for each write that changes the spec, none for
    metadata or status (`.../status`, or the HPA controller) writes."""
    c = Client(sim)
    path = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/web"
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": "web"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                       "name": "web"}, "minReplicas": 1, "maxReplicas": 3}}
    r = c.request("POST", path.rsplit("/", 1)[0], hpa)
    assert r.status == 201 and r.json()["metadata"]["generation"] == 1
    merge = "application/merge-patch+json"

    def patch(body, sub=""):
        r = c.request("PATCH", path + sub, body, ctype=merge)
        assert r.status == 200, r.json()
        return r.json()["metadata"]
    assert patch({"metadata": {"annotations": {"a": "b"}}})["generation"] == 1
    assert patch({"status": {"currentReplicas": 1, "desiredReplicas": 1}},
                 "/status")["generation"] == 1
    assert patch({"spec": {"behavior": {"scaleUp": {"selectPolicy": "Disabled"}}}})[
        "generation"] == 2
    assert patch({"spec": {"behavior": {"scaleUp": {"selectPolicy": "Disabled"}}}})[
        "generation"] == 2  # the same spec: no change
    assert patch({"spec": {"maxReplicas": 4}})["generation"] == 3
    assert sim.get("hpa", "web")["metadata"]["generation"] == 3


def test_crud_errors_and_resource_versions(sim):
    c = Client(sim)
    base = "/apis/apps/v1/namespaces/default/deployments"
    r = c.request("POST", base, deployment("web"))
    assert r.status == 201
    d = r.json()
    assert d["metadata"]["generation"] == 1 and d["metadata"]["uid"]
    assert c.request("POST", base, deployment("web")).json()["reason"] == "AlreadyExists"
    nf = c.get(base + "/nope").json()
    assert (nf["code"], nf["reason"], nf["message"]) == \
        (404, "NotFound", 'deployments.apps "nope" not found')
    stale = dict(d)
    d2 = c.request("PATCH", base + "/web", {"metadata": {"labels": {"x": "y"}}},
                   ctype="application/merge-patch+json").json()
    assert int(d2["metadata"]["resourceVersion"]) > int(d["metadata"]["resourceVersion"])
    assert d2["metadata"]["generation"] == 1  # metadata only
    conflict = c.request("PUT", base + "/web", stale).json()
    assert (conflict["code"], conflict["reason"]) == (409, "Conflict")
    bad = c.request("POST", base, {**deployment("bad"), "spec": {
        **deployment("bad")["spec"], "selector": {"matchLabels": {"app": "other"}}}}).json()
    assert (bad["code"], bad["reason"]) == (422, "Invalid")
    assert c.get(base, query={"labelSelector": "a in (b"}).status == 400
    assert c.get(base, query={"fieldSelector": "spec.replicas=1"}).status == 400
    assert c.get("/apis/apps/v1/namespaces/default/gadgets").status == 404
    # list items of built-in kinds carry no kind/apiVersion, like the real server
    items = c.get(base).json()["items"]
    assert "kind" not in items[0]
    # pagination
    for n in range(5):
        sim.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{n}"}})
    page = c.get("/api/v1/namespaces/default/configmaps", query={"limit": 2}).json()
    assert names(page) == ["c0", "c1"] and page["metadata"]["remainingItemCount"] == 3
    rest = c.get("/api/v1/namespaces/default/configmaps",
                 query={"continue": page["metadata"]["continue"]}).json()
    assert names(rest) == ["c2", "c3", "c4"]
    # status is ignored on the main resource, and only status changes through /status
    r = c.request("PATCH", base + "/web", {"status": {"replicas": 42}, "spec": {"paused": True}},
                  ctype="application/merge-patch+json").json()
    assert r["status"].get("replicas") != 42 and r["spec"]["paused"] is True
    assert r["metadata"]["generation"] == 2
    r = c.request("PATCH", base + "/web/status", {"status": {"observedGeneration": 7},
                                                  "spec": {"replicas": 9}},
                  ctype="application/merge-patch+json").json()
    assert r["status"]["observedGeneration"] == 7 and r["spec"]["replicas"] == 1


def test_patch_flavours_and_scale_subresource(sim):
    c = Client(sim)
    base = "/apis/apps/v1/namespaces/default/deployments"
    d = deployment("web")
    d["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "s:1"})
    sim.put(d)
    smp = {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "s:2"}]}}}}
    r = c.request("PATCH", base + "/web", smp,
                  ctype="application/strategic-merge-patch+json").json()
    assert [(x["name"], x["image"]) for x in r["spec"]["template"]["spec"]["containers"]] == \
        [("web", "app:1"), ("side", "s:2")]
    r = c.request("PATCH", base + "/web", [
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "app:9"},
        {"op": "add", "path": "/metadata/annotations", "value": {"a": "b"}}],
        ctype="application/json-patch+json").json()
    assert r["spec"]["template"]["spec"]["containers"][0]["image"] == "app:9"
    # custom resources take no strategic merge patch
    sim.put(eds("web", 1))
    cr = "/apis/wiremind.io/v1/namespaces/default/expecteddeploymentscales/web"
    assert c.request("PATCH", cr, {"spec": {"priority": 5}},
                     ctype="application/strategic-merge-patch+json").status == 415
    assert c.request("PATCH", cr, {"spec": {"priority": 5}},
                     ctype="application/merge-patch+json").json()["spec"]["priority"] == 5
    bad = c.request("PATCH", cr, {"spec": {"expectedScale": "two"}},
                    ctype="application/merge-patch+json")
    assert bad.status == 422
    # server-side apply: fieldManager required; create-or-merge
    apply = dict(deployment("ssa", 2), metadata={"name": "ssa"})
    assert c.request("PATCH", base + "/ssa", apply,
                     ctype="application/apply-patch+yaml").status == 422
    r = c.request("PATCH", base + "/ssa", apply, ctype="application/apply-patch+yaml",
                  query={"fieldManager": "helm"})
    assert r.status == 201
    assert r.json()["metadata"]["managedFields"][0]["manager"] == "helm"
    apply["metadata"]["labels"] = {"added": "yes"}
    r = c.request("PATCH", base + "/ssa", apply, ctype="application/apply-patch+yaml",
                  query={"fieldManager": "helm"})
    assert r.status == 200 and r.json()["metadata"]["labels"] == {"added": "yes"}
    del apply["metadata"]["labels"]  # no longer applied -> removed
    r = c.request("PATCH", base + "/ssa", apply, ctype="application/apply-patch+yaml",
                  query={"fieldManager": "helm"}).json()
    assert "labels" not in r["metadata"]
    # scale subresource: GET, PUT with a stale resourceVersion, PATCH
    s = c.get(base + "/web/scale").json()
    assert (s["kind"], s["apiVersion"], s["spec"]["replicas"], s["status"]["selector"]) == \
        ("Scale", "autoscaling/v1", 1, "app=web")
    c.request("PATCH", base + "/web", {"metadata": {"labels": {"z": "1"}}},
              ctype="application/merge-patch+json")
    s["spec"]["replicas"] = 3
    assert c.request("PUT", base + "/web/scale", s).json()["code"] == 409
    del s["metadata"]["resourceVersion"]
    assert c.request("PUT", base + "/web/scale", s).json()["spec"]["replicas"] == 3
    r = c.request("PATCH", base + "/web/scale", {"spec": {"replicas": -1}},
                  ctype="application/merge-patch+json")
    assert r.status == 422
    assert c.request("PATCH", base + "/web/scale", {"spec": {"replicas": 0}},
                     ctype="application/merge-patch+json").json()["spec"]["replicas"] == 0
    assert sim.get("deploy", "web")["spec"]["replicas"] == 0


def test_delete_variants_dry_run_and_secrets(sim):
    c = Client(sim)
    cms = "/api/v1/namespaces/default/configmaps"
    for n, tier in enumerate(["a", "a", "b"]):
        sim.put({"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": f"c{n}", "labels": {"tier": tier}}})
    gone = c.request("DELETE", cms, query={"labelSelector": "tier=a"}).json()
    assert names(gone) == ["c0", "c1"]
    assert [o["metadata"]["name"] for o in sim.objects("cm")] == ["c2"]
    dry = c.request("POST", cms, {"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": "dry"}}, query={"dryRun": "All"})
    assert dry.status == 201 and sim.get("cm", "dry") is None
    # foreground deletion: the owner waits (finalizer) until its dependents are gone
    sim.put(deployment("web", 1, annotations={STOP_ANNOTATION: "0.3"}))
    sim.wait_for(lambda: sim.pods_of("web"))
    r = c.request("DELETE", "/apis/apps/v1/namespaces/default/deployments/web",
                  {"kind": "DeleteOptions", "apiVersion": "v1",
                   "propagationPolicy": "Foreground"}).json()
    assert r["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert sim.get("deploy", "web")["metadata"]["deletionTimestamp"]
    sim.wait_for(lambda: sim.get("deploy", "web") is None, what="foreground deletion")
    assert not sim.objects("pods") and not sim.objects("rs")
    # Secrets: stringData is folded into base64 data, like the real server does
    s = c.request("POST", "/api/v1/namespaces/default/secrets",
                  {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                   "stringData": {"url": "postgresql://u:p@h/db"}}).json()
    assert s["data"] == {"url": "cG9zdGdyZXNxbDovL3U6cEBoL2Ri"} and "stringData" not in s
    assert s["type"] == "Opaque"


def test_periodic_bookmarks():
    with K8sSim(bookmark_interval=0.1) as s:
        evs = list(Client(s).watch("/api/v1/namespaces/default/pods", {
            "resourceVersion": str(s.store.rv), "allowWatchBookmarks": "true",
            "timeoutSeconds": "0.35"}))
        assert len(evs) >= 2 and {e["type"] for e in evs} == {"BOOKMARK"}
        assert evs[0]["object"]["kind"] == "Pod"
        assert evs[0]["object"]["metadata"]["resourceVersion"] == str(s.store.rv)


@pytest.mark.timing  # a wall-clock upper bound
def test_watch_semantics(sim):
    c = Client(sim)
    pods = "/api/v1/namespaces/default/pods"
    sim.put(deployment("web", 1))
    sim.wait_for(lambda: sim.pods_of("web") and
                 sim.pods_of("web")[0]["status"]["phase"] == "Running")
    rv = c.get(pods).json()["metadata"]["resourceVersion"]

    # from a resourceVersion: the changes after it, ending at timeoutSeconds
    def scale_later():
        time.sleep(0.1)
        sim.scale("deploy", "web", 0)
    threading.Thread(target=scale_later, daemon=True).start()
    t0 = time.monotonic()
    evs = list(c.watch(pods, {"resourceVersion": rv, "timeoutSeconds": "0.6",
                              "labelSelector": "app=web"}))
    assert 0.55 < time.monotonic() - t0 < 2
    assert [e["type"] for e in evs] == ["MODIFIED", "DELETED"]
    assert evs[0]["object"]["metadata"]["deletionTimestamp"]
    assert evs[1]["object"]["kind"] == "Pod"

    # watch-list (Helm 4): existing objects, then the initial-events-end bookmark
    for n in range(3):
        sim.put({"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": f"c{n}", "labels": {"keep": str(n < 2).lower()}}})
    evs = list(c.watch("/api/v1/namespaces/default/configmaps", {
        "sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan",
        "allowWatchBookmarks": "true", "timeoutSeconds": "0.3",
        "labelSelector": "keep=true"}))
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in evs] == \
        [("ADDED", "c0"), ("ADDED", "c1"), ("BOOKMARK", None)]
    assert evs[2]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}

    # an object leaving / entering the selector arrives as DELETED / ADDED
    rv = c.get("/api/v1/namespaces/default/configmaps").json()["metadata"]["resourceVersion"]
    sim.patch("cm", "c0", {"metadata": {"labels": {"keep": "false"}}})
    sim.patch("cm", "c2", {"metadata": {"labels": {"keep": "true"}}})
    evs = list(c.watch("/api/v1/namespaces/default/configmaps", {
        "resourceVersion": rv, "timeoutSeconds": "0.2", "labelSelector": "keep=true"}))
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == \
        [("DELETED", "c0"), ("ADDED", "c2")]

    # too old after compaction: an ERROR event with 410 Expired
    sim.compact()
    evs = list(c.watch("/api/v1/namespaces/default/configmaps",
                       {"resourceVersion": rv, "timeoutSeconds": "0.2"}))
    assert evs[0]["type"] == "ERROR" and evs[0]["object"]["code"] == 410
    assert c.get(pods, query={"watch": "1", "sendInitialEvents": "true"}).status == 400


def test_controller_behaviour(sim):
    sim.put(deployment("web", 2, annotations={"sim.chartreuse.test/start-delay": "0.5"}))
    t0 = time.monotonic()
    sim.wait_for(lambda: status(sim, "web").get("readyReplicas") == 2, what="ready")
    assert time.monotonic() - t0 >= 0.45
    d = status(sim, "web")
    assert (d["replicas"], d["updatedReplicas"], d["availableReplicas"],
            d["observedGeneration"]) == (2, 2, 2, 1)
    # a Failed Pod lingers, is not counted, and is replaced
    victim = sim.pods_of("web")[0]["metadata"]["name"]
    sim.set_pod_phase(victim, "Failed", reason="Evicted")
    sim.wait_for(lambda: len([p for p in sim.pods_of("web")
                              if p["status"]["phase"] == "Running"]) == 2, what="replaced")
    sim.scale("deploy", "web", 0)
    sim.wait_for(lambda: [p["metadata"]["name"] for p in sim.pods_of("web")] == [victim],
                 what="only the failed pod left")
    # deleting the Deployment deletes its ReplicaSet and Pods
    sim.scale("deploy", "web", 1)
    sim.wait_for(lambda: len(sim.pods_of("web")) == 2)
    sim.delete("deploy", "web", propagationPolicy="Background")
    sim.wait_for(lambda: not sim.objects("pods") and not sim.objects("rs"), what="gc")
    # a new template rolls to a new ReplicaSet
    sim.put(deployment("api", 1, image="api:1"))
    sim.wait_for(lambda: len(sim.pods_of("api")) == 1)
    sim.put(deployment("api", 1, image="api:2"))
    sim.wait_for(lambda: [p["spec"]["containers"][0]["image"] for p in sim.pods_of("api")
                          if not p["metadata"].get("deletionTimestamp")] == ["api:2"])
    assert sorted(r["spec"]["replicas"] for r in sim.objects("rs")) == [0, 1]


def test_hpa_controller_is_opt_in(tmp_path):
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": "web"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                       "name": "web"}, "minReplicas": 3, "maxReplicas": 5}}
    with K8sSim(hpa_controller=True, pod_start_delay=0) as s:
        s.put(deployment("web", 1))
        s.put(hpa)
        s.wait_for(lambda: s.get("deploy", "web")["spec"]["replicas"] == 3)
        s.scale("deploy", "web", 0)  # at 0 the HPA leaves it alone
        s.settle()
        assert s.get("deploy", "web")["spec"]["replicas"] == 0
        s.patch("hpa", "web", {"spec": {"behavior": {"scaleUp": {"selectPolicy": "Disabled"}}}})
        s.scale("deploy", "web", 1)
        s.settle()
        time.sleep(0.1)
        assert s.get("deploy", "web")["spec"]["replicas"] == 1


@pytest.mark.timing  # a wall-clock upper bound
def test_stop_is_clean():
    before = threading.active_count()
    s = K8sSim().start()
    c = Client(s)
    t = threading.Thread(target=lambda: list(c.watch("/api/v1/pods", timeout=30)),
                         daemon=True)
    t.start()
    s.wait_for(lambda: s.request_log.filter(watch=True) or
               any(th.name == "k8s-sim-conn" for th in threading.enumerate()))
    time.sleep(0.1)
    t0 = time.monotonic()
    s.stop()
    t.join(timeout=5)
    assert time.monotonic() - t0 < 3 and not t.is_alive()
    assert threading.active_count() <= before


# --- unknown fields ---------------------------------------------------------------------

def test_unknown_fields_and_field_validation(sim, kubectl, tmp_path):
    c = Client(sim)
    deploys = "/apis/apps/v1/namespaces/default/deployments"
    bad = dict(deployment("web", 1), replicas=3)  # misindented: beside spec
    r = c.request("POST", deploys, bad, query={"fieldValidation": "Strict"})
    assert r.status == 400 and 'strict decoding error: unknown field "replicas"' in \
        r.json()["message"], r.body
    r = c.request("POST", deploys, bad)  # default: Warn (dropped, with a warning)
    assert r.status == 201 and "replicas" not in r.json()
    assert r.headers["Warning"] == '299 - "unknown field \\"replicas\\""'
    r = c.request("POST", deploys, dict(bad, metadata={"name": "x"}), query={
        "fieldValidation": "Sloppy"})
    assert r.status == 400 and "fieldValidation" in r.json()["message"]
    # server-side apply refuses unknown fields whatever fieldValidation says
    r = c.request("PATCH", deploys + "/web", dict(bad, replicas=4),
                  ctype="application/apply-patch+yaml", query={"fieldManager": "t"})
    assert r.status == 400 and ".replicas: field not declared in schema" in \
        r.json()["message"]
    # custom resources: checked (and pruned) against the CRD's schema, all the way down
    eds_path = "/apis/wiremind.io/v1/namespaces/default/expecteddeploymentscales"
    doc = eds("web", 2)
    doc["spec"]["expectedScael"] = 3
    r = c.request("POST", eds_path, doc, query={"fieldValidation": "Strict"})
    assert r.status == 400 and 'unknown field "spec.expectedScael"' in r.json()["message"]
    r = c.request("POST", eds_path, doc, query={"fieldValidation": "Ignore"})
    assert r.status == 201 and "Warning" not in r.headers
    assert sim.get("eds", "web")["spec"] == {"deploymentName": "web", "expectedScale": 2,
                                             "priority": 0}
    # kubectl validates strictly by default (server-side: the OpenAPI documents declare
    # fieldValidation); --validate=false drops the field
    manifest = tmp_path / "cm.yaml"
    manifest.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                                        "metadata": {"name": "cfg"}, "datta": {"a": "1"}}))
    res = kubectl("create", "-f", str(manifest), check=False)
    assert res.returncode != 0 and 'unknown field "datta"' in res.stderr, res.stderr
    kubectl("create", "--validate=false", "-f", str(manifest))
    assert "datta" not in sim.get("cm", "cfg")


# --- Jobs -------------------------------------------------------------------------------

def job(name, backoff_limit=0, annotations=None, template_annotations=None, **spec):
    meta = {"name": name}
    if annotations:
        meta["annotations"] = annotations
    tmeta = {"annotations": template_annotations} if template_annotations else {}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": {"backoffLimit": backoff_limit, **spec,
                     "template": {"metadata": tmeta, "spec": {
                         "restartPolicy": "Never",
                         "containers": [{"name": "main", "image": "app:1"}]}}}}


def conditions(sim, name):
    st = (sim.get("jobs", name) or {}).get("status") or {}
    return [(c["type"], c["reason"]) for c in st.get("conditions") or []
            if c["status"] == "True"]


def finished(sim, name):
    return any(t in ("Complete", "Failed") for t, _ in conditions(sim, name))


def test_job_controller_success_and_failure(sim):
    c = Client(sim)
    created = c.request("POST", "/apis/batch/v1/namespaces/default/jobs", job("ok")).json()
    uid = created["metadata"]["uid"]
    sim.wait_for(lambda: sim.objects("pods", "default", "job-name=ok"), what="the Pod")
    pod = sim.objects("pods", "default", "job-name=ok")[0]
    m = pod["metadata"]
    assert m["name"].startswith("ok-") and len(m["name"]) == len("ok-") + 5
    assert m["labels"]["batch.kubernetes.io/job-name"] == "ok"
    assert m["labels"]["controller-uid"] == uid
    assert m["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "Job", "name": "ok",
                                     "uid": uid, "controller": True,
                                     "blockOwnerDeletion": True}]
    assert m["finalizers"] == ["batch.kubernetes.io/job-tracking"]
    sim.wait_for(lambda: finished(sim, "ok"), what="the Job finished")
    st = sim.get("jobs", "ok")["status"]
    assert conditions(sim, "ok") == [("SuccessCriteriaMet", "CompletionsReached"),
                                     ("Complete", "CompletionsReached")]
    assert (st["succeeded"], st.get("failed"), st.get("active")) == (1, None, None)
    assert st["startTime"] and st["completionTime"] and st["uncountedTerminatedPods"] == {}
    pod = sim.get("pods", pod["metadata"]["name"])
    assert pod["status"]["phase"] == "Succeeded" and "finalizers" not in pod["metadata"]
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    # each step is its own write: a watcher sees SuccessCriteriaMet before Complete
    seen = [[c["type"] for c in (o.get("status") or {}).get("conditions") or []]
            for _, o in sim.history("jobs", "ok")]
    assert ["SuccessCriteriaMet"] in seen
    phases = [o["status"].get("phase") for _, o in sim.history("pods", pod["metadata"]["name"])]
    assert phases.index("Running") < phases.index("Succeeded")

    # exit-code annotation on the Job: every Pod fails; backoffLimit 2 -> 3 Pods
    sim.put(job("bad", 2, annotations={"sim.chartreuse.test/exit-code": "3"}))
    sim.wait_for(lambda: finished(sim, "bad"), what="the Job failed")
    assert conditions(sim, "bad") == [("FailureTarget", "BackoffLimitExceeded"),
                                      ("Failed", "BackoffLimitExceeded")]
    pods = sim.objects("pods", "default", "job-name=bad")
    assert [p["status"]["phase"] for p in pods] == ["Failed"] * 3
    assert pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
    assert sim.get("jobs", "bad")["status"]["failed"] == 3

    # the annotation on the template (what a Helm hook uses); a deadline that runs out
    sim.put(job("tpl", template_annotations={"sim.chartreuse.test/exit-code": "1"}))
    sim.put(job("slow", 5, activeDeadlineSeconds=1,
                template_annotations={"sim.chartreuse.test/run-delay": "30"}))
    sim.wait_for(lambda: finished(sim, "tpl") and finished(sim, "slow"), timeout=5)
    assert conditions(sim, "tpl")[-1] == ("Failed", "BackoffLimitExceeded")
    assert conditions(sim, "slow") == [("FailureTarget", "DeadlineExceeded"),
                                       ("Failed", "DeadlineExceeded")]
    sim.wait_for(lambda: not sim.objects("pods", "default", "job-name=slow"),
                 what="the running Pod deleted at the deadline")


def test_job_deletion_propagation(sim):
    for name in ("bg", "fg", "orphan"):
        sim.put(job(name, template_annotations={"sim.chartreuse.test/run-delay": "30",
                                                "sim.chartreuse.test/stop-delay": "0.3"}))
    sim.wait_for(lambda: all(
        p["status"]["phase"] == "Running" for p in sim.objects("pods")) and
        len(sim.objects("pods")) == 3, what="three running Pods")
    c = Client(sim)
    path = "/apis/batch/v1/namespaces/default/jobs/"
    # Background: the Job goes at once, the garbage collector deletes its Pod after
    c.request("DELETE", path + "bg", {"propagationPolicy": "Background"})
    assert sim.get("jobs", "bg") is None
    sim.wait_for(lambda: not sim.objects("pods", "default", "job-name=bg"), what="bg Pod")
    # Foreground: the Job stays (finalizer) until its Pod is gone
    r = c.request("DELETE", path + "fg", query={"propagationPolicy": "Foreground"}).json()
    assert r["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert sim.objects("pods", "default", "job-name=fg")
    sim.wait_for(lambda: sim.get("jobs", "fg") is None, what="foreground deletion")
    assert not sim.objects("pods", "default", "job-name=fg")
    # Orphan: the Pod stays, without owner, and loses the Job's tracking finalizer
    c.request("DELETE", path + "orphan", {"propagationPolicy": "Orphan"})
    sim.settle()
    pod = sim.objects("pods", "default", "job-name=orphan")[0]
    assert "ownerReferences" not in pod["metadata"] and "finalizers" not in pod["metadata"]


def test_pods_stop_once_watched_go_only_while_a_watch_is_open(tmp_path):
    """The fault matrix's order-keeping mode: a terminating Pod waits for a watch on Pods,
    then goes after its stop delay."""
    with K8sSim(pod_start_delay=0, pod_stop_delay=0.1, pods_stop_once_watched=True) as s:
        s.put(deployment("web", 2))
        s.wait_for(lambda: len(s.pods_of("web")) == 2, what="2 pods")
        s.scale("deploy", "web", 0)
        s.wait_for(lambda: all(p["metadata"].get("deletionTimestamp")
                               for p in s.pods_of("web")), what="2 terminating")
        time.sleep(0.5)
        assert len(s.pods_of("web")) == 2  # nobody watches: they stay, Terminating
        kubectl = Kubectl(KUBECTL["1.32"], s.kubeconfig(tmp_path / "kubeconfig"), tmp_path)
        kubectl("wait", "--for=delete", "pod", "-l", "app=web", "--timeout=10s")
        assert s.pods_of("web") == []
        assert s.request_log.filter("GET", "/pods$", watch=True)
        assert not s.controller_errors and not s.internal_errors


def test_kubelet_hook_takes_over_job_pods(tmp_path):
    """A job runner (kubelet_hook) decides how a Job's Pod ends; the Job follows."""
    taken = []

    def hook(sim, pod):
        taken.append(pod["metadata"]["name"])
        return True
    with K8sSim(pod_start_delay=0) as s:
        s.kubelet_hook = hook
        s.put(job("run"))
        s.wait_for(lambda: taken, what="the hook called")
        s.settle()
        assert s.get("pods", taken[0])["status"]["phase"] == "Pending"  # nobody ran it
        assert not finished(s, "run")
        s.set_pod_phase(taken[0], "Failed")
        s.wait_for(lambda: finished(s, "run"))
        assert conditions(s, "run")[-1] == ("Failed", "BackoffLimitExceeded")
        assert not s.controller_errors


# --- protobuf bodies ------------------------------------------------------------------

def _varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _pb(num, value):
    """One field: ints as varints, bytes/str length-delimited."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return _varint(num << 3) + _varint(value)
    if isinstance(value, str):
        value = value.encode()
    return _varint(num << 3 | 2) + _varint(len(value)) + value


def _pb_map(num, mapping):
    return b"".join(_pb(num, _pb(1, k) + _pb(2, v)) for k, v in mapping.items())


def _k8s_envelope(api_version, kind, raw):
    return b"k8s\x00" + _pb(1, _pb(1, api_version) + _pb(2, kind)) + _pb(2, raw) + \
        _pb(3, "") + _pb(4, "")


def test_protobuf_request_bodies(sim):
    """What client-go's typed clients (Helm's release storage) send."""
    c = Client(sim)
    pb = "application/vnd.kubernetes.protobuf"
    # as gogo-protobuf marshals it: every non-pointer field, zero values included
    meta = _pb(1, "rel.v1") + _pb(2, "") + _pb(3, "") + _pb(6, "") + _pb(7, 0) + \
        _pb(8, b"") + _pb_map(11, {"owner": "helm", "status": "deployed"})
    secret = _pb(1, meta) + _pb_map(2, {"release": b"\x1f\x8b\x00binary"}) + \
        _pb(3, "helm.sh/release.v1")
    r = c.request("POST", "/api/v1/namespaces/default/secrets",
                  _k8s_envelope("v1", "Secret", secret), ctype=pb,
                  accept=f"{pb},application/json")
    assert r.status == 201, r.body
    s = sim.get("secret", "rel.v1")
    assert s["type"] == "helm.sh/release.v1"
    assert s["metadata"]["labels"] == {"owner": "helm", "status": "deployed"}
    assert s["data"]["release"] == "H4sAYmluYXJ5"
    assert "generateName" not in s["metadata"] and s["metadata"]["creationTimestamp"]
    # DeleteOptions: pointer fields keep their zero value (gracePeriodSeconds: 0)
    opts = _pb(1, 0) + _pb(4, "Foreground")
    r = c.request("DELETE", "/api/v1/namespaces/default/secrets/rel.v1",
                  _k8s_envelope("v1", "DeleteOptions", opts), ctype=pb)
    assert r.status == 200
    req = sim.request_log[-1]
    assert req.json() == {"apiVersion": "v1", "kind": "DeleteOptions",
                          "gracePeriodSeconds": 0, "propagationPolicy": "Foreground"}
    # a kind the simulator cannot decode is a clear 415, not a silently wrong object
    r = c.request("POST", "/api/v1/namespaces/default/pods",
                  _k8s_envelope("v1", "Pod", _pb(1, _pb(1, "p"))), ctype=pb)
    assert r.status == 415 and "Pod" in r.json()["message"]
    # answers are JSON: a client accepting only protobuf gets 406
    r = c.request("GET", "/api/v1/namespaces/default/secrets", accept=pb)
    assert r.status == 406 and r.json()["reason"] == "NotAcceptable"


def test_server_side_apply_ownership_as_the_api_server(sim):
    """What Helm 4's apply and chartreuse's scaling rely on: a field another manager owns
    conflicts (409, the API server's message and causes) when an apply changes its value and
    force is not set; an apply leaving it as it is shares it; forcing takes the conflicting
    fields only, so a manager that shares the others keeps them."""
    c = Client(sim)
    url = "/apis/apps/v1/namespaces/default/deployments/web"
    ssa = "application/apply-patch+yaml"

    def apply(obj, **query):
        return c.request("PATCH", url, obj, ctype=ssa, query={"fieldManager": "helm", **query})

    d = deployment("web", 2, labels={"team": "a"})
    assert apply(d).status == 201
    # another applier applies the label helm applies, with the same value: shared
    shared = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "web", "labels": {"team": "a"}}}
    assert c.request("PATCH", url, shared, ctype=ssa, query={"fieldManager": "ops"}).status \
        == 200
    assert {e["manager"] for e in sim.get("deploy", "web")["metadata"]["managedFields"]} == \
        {"helm", "ops"}
    r = c.request("PATCH", url + "/scale", {"spec": {"replicas": 0}},
                  ctype="application/merge-patch+json", query={"fieldManager": "chartreuse"})
    assert r.status == 200
    entry = next(e for e in sim.get("deploy", "web")["metadata"]["managedFields"]
                 if e["manager"] == "chartreuse")
    assert (entry["operation"], entry["subresource"], entry["apiVersion"]) == \
        ("Update", "scale", "apps/v1")
    assert entry["fieldsV1"] == {"f:spec": {"f:replicas": {}}}

    r = apply(d)
    st = r.json()
    assert (r.status, st["reason"], st["code"]) == (409, "Conflict", 409)
    who = f'"chartreuse" with subresource "scale" using apps/v1 at {entry["time"]}'
    assert st["message"] == f"Apply failed with 1 conflict: conflict with {who}: .spec.replicas"
    assert st["details"] == {"causes": [{"reason": "FieldManagerConflict",
                                         "message": f"conflict with {who}",
                                         "field": ".spec.replicas"}]}
    assert sim.get("deploy", "web")["spec"]["replicas"] == 0

    # the same count as the live one: no conflict, both own it
    assert apply(deployment("web", 0, labels={"team": "a"})).status == 200
    owners = {e["manager"] for e in sim.get("deploy", "web")["metadata"]["managedFields"]
              if "f:replicas" in e["fieldsV1"].get("f:spec", {})}
    assert owners == {"helm", "chartreuse"}

    # two conflicts, an applier among them: grouped by manager, an applier named alone
    other = {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "web", "annotations": {"note": "x"}}}
    assert c.request("PATCH", url, other, ctype=ssa,
                     query={"fieldManager": "argocd"}).status == 200
    d2 = deployment("web", 3, labels={"team": "a"})
    d2["metadata"]["annotations"] = {"note": "y"}
    st = apply(d2).json()
    assert st["message"] == (
        'Apply failed with 2 conflicts: conflicts with "argocd":\n'
        '- .metadata.annotations.note\n'
        f'conflicts with {who}:\n- .spec.replicas')

    # forcing takes the conflicting fields only
    r = apply(deployment("web", 2, labels={"team": "a"}), force="true")
    assert r.status == 200 and r.json()["spec"]["replicas"] == 2
    managers = {e["manager"]: e["fieldsV1"]
                for e in sim.get("deploy", "web")["metadata"]["managedFields"]}
    assert "chartreuse" not in managers  # its only field taken
    assert managers["ops"] == {"f:metadata": {"f:labels": {"f:team": {}}}}
    # helm no longer applies the label: ops still owns it, so it stays
    assert apply(deployment("web", 2)).status == 200
    assert sim.get("deploy", "web")["metadata"]["labels"]["team"] == "a"
# --- RBAC: ServiceAccount tokens are authorised against the Roles held (k8s_sim/rbac.py) ----

def rbac_setup(sim, rules, ns="ns", sa="sa", cluster=False):
    """A ServiceAccount bound to a Role (or ClusterRole) of these rules; its token."""
    sim.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    kind = "ClusterRole" if cluster else "Role"
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
            "metadata": {"name": "r"}, "rules": rules}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "rb", "namespace": ns},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": "r"},
               "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]}
    if not cluster:
        role["metadata"]["namespace"] = ns
    sim.put(role)
    sim.put(binding)
    token = f"sa-token-{ns}-{sa}"
    sim.add_token(token, f"system:serviceaccount:{ns}:{sa}")
    return token


@pytest.mark.rbac_refusals
def test_rbac_allows_exactly_what_the_role_grants(sim):
    token = rbac_setup(sim, [
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
        {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get"],
         "resourceNames": ["api"]}])
    dep = deployment("api")
    dep["metadata"]["namespace"] = "ns"
    sim.put(dep)
    c = Client(sim, token=token)
    base = "/apis/apps/v1/namespaces/ns/deployments"
    assert c.get(f"{base}/api").status == 200
    assert c.get("/api/v1/namespaces/ns/pods").status == 200
    assert c.get(f"{base}/api/scale").status == 200
    # Discovery is every authenticated user's (system:discovery).
    assert c.get("/apis").status == 200 and c.get("/version").status == 200

    r = c.request("PATCH", f"{base}/api/scale", {"spec": {"replicas": 0}},
                  ctype="application/merge-patch+json")
    assert r.status == 403
    st = r.json()
    assert st["reason"] == "Forbidden" and st["code"] == 403
    assert st["message"] == ('deployments.apps "api" is forbidden: User '
                             '"system:serviceaccount:ns:sa" cannot patch resource '
                             '"deployments/scale" in API group "apps" in the namespace "ns"')
    assert st["details"] == {"name": "api", "group": "apps", "kind": "deployments"}
    assert sim.get("deploy", "api", "ns")["spec"]["replicas"] == 1  # nothing written

    cases = [  # (method, path, query, the verb the message names)
        ("GET", base, None, "list"),                              # get does not give list
        ("GET", "/api/v1/namespaces/ns/pods", {"watch": "1"}, "watch"),
        ("GET", "/api/v1/namespaces/ns/pods/x", None, "get"),
        ("DELETE", "/api/v1/namespaces/ns/pods", None, "deletecollection"),
        ("GET", "/api/v1/namespaces/other/pods", None, "list"),   # another namespace
        ("GET", "/api/v1/pods", None, "list"),                    # all namespaces
        ("GET", f"{base}/web/scale", None, "get"),                # not in resourceNames
        ("POST", "/apis/batch/v1/namespaces/ns/jobs", None, "create"),
    ]
    for method, path, query, verb in cases:
        r = c.request(method, path, {} if method == "POST" else None, query=query)
        assert r.status == 403, (method, path, r.status)
        assert f'cannot {verb} resource' in r.json()["message"], r.json()["message"]
    assert 'at the cluster scope' in c.get("/api/v1/pods").json()["message"]
    assert c.get("/api/v1/namespaces/ns/pods/x").json()["message"].startswith(
        'pods "x" is forbidden: ')

    # The admin token stays unrestricted, and an unknown SA has nothing.
    assert Client(sim).get(f"{base}").status == 200
    sim.add_token("nobody", "system:serviceaccount:ns:nobody")
    assert Client(sim, token="nobody").get(f"{base}/api").status == 403


@pytest.mark.rbac_refusals
def test_rbac_cluster_roles_groups_and_bindings_are_followed(sim):
    # A ClusterRole through a RoleBinding gives its rules in that namespace only.
    token = rbac_setup(sim, [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["list"]}],
                       cluster=True)
    c = Client(sim, token=token)
    assert c.get("/apis/apps/v1/namespaces/ns/deployments").status == 200
    assert c.get("/apis/apps/v1/namespaces/default/deployments").status == 403
    # A ClusterRoleBinding to a group of every ServiceAccount of the namespace.
    sim.put({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
             "metadata": {"name": "crb"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                         "name": "r"},
             "subjects": [{"kind": "Group", "name": "system:serviceaccounts:ns"}]})
    assert c.get("/apis/apps/v1/namespaces/default/deployments").status == 200
    # A binding whose Role does not exist grants nothing.
    sim.delete("clusterrole", "r", namespace=None)
    assert c.get("/apis/apps/v1/namespaces/ns/deployments").status == 403


def test_self_subject_access_review_answers_from_the_same_rules(sim):
    token = rbac_setup(sim, [
        {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["patch"]}])
    c = Client(sim, token=token)

    def review(**attrs):
        r = c.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                      {"apiVersion": "authorization.k8s.io/v1",
                       "kind": "SelfSubjectAccessReview",
                       "spec": {"resourceAttributes": {"namespace": "ns", **attrs}}})
        assert r.status == 201, r.body
        doc = r.json()
        assert doc["kind"] == "SelfSubjectAccessReview"
        return doc["status"]["allowed"]

    assert review(group="apps", resource="deployments", subresource="scale", verb="patch")
    assert not review(group="apps", resource="deployments", verb="patch")
    assert not review(group="apps", resource="deployments", subresource="scale", verb="get")
    assert not review(group="", resource="secrets", verb="create")
    # The admin is allowed everything.
    r = Client(sim).request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                            {"spec": {"resourceAttributes": {"namespace": "ns", "verb": "delete",
                                                             "resource": "secrets"}}})
    assert r.status == 201 and r.json()["status"]["allowed"] is True
