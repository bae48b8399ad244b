"""The simulated Job runner (tests/k8s_sim/jobrunner.py): Job Pods created in the simulator
run their init containers and containers as local processes, and the Pod's status says
what happened. Last, chartreuse's own migration Job Pod, rendered by the post-renderer,
runs against the real PostgreSQL and the simulator. No Helm needed."""
import base64
import os
import signal
import time
import uuid

import pytest

from conftest import BIN, IMAGE_REPOSITORY, REPO, injected, post_render
from k8s_sim import K8sSim
from k8s_sim.jobrunner import SA_DIR, Container, Image, JobRunner, expand, materialize

CHARTREUSE_IMAGE = Image(files={"/opt/chartreuse/bin/chartreuse": BIN},
                         path=["/opt/chartreuse/bin"], workdir="/tmp")


def b64(s):
    return base64.b64encode(s.encode()).decode()


def ctr(name, *argv, image="tools", **kw):
    return {"name": name, "image": image, "command": list(argv), **kw}


def job_pod(name, containers, init=(), volumes=(), **spec):
    """A Pod as a Job's would look: restartPolicy Never."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default",
                         "labels": {"batch.kubernetes.io/job-name": name}},
            "spec": {"restartPolicy": "Never", "initContainers": list(init),
                     "containers": list(containers), "volumes": list(volumes), **spec}}


def statuses(pod, kind="containerStatuses"):
    return {c["name"]: c for c in (pod.get("status") or {}).get(kind) or []}


@pytest.fixture
def runner(k8s, tmp_path):
    r = JobRunner(k8s, images={"tools": Image(), "chartreuse": CHARTREUSE_IMAGE},
                  workdir=tmp_path / "pods", pending_timeout=3, restart_backoff=0.1)
    k8s.kubelet_hook = r
    yield r
    r.close()
    assert not r.running()


def finish(runner, k8s, name, timeout=30):
    """Wait for the runner, then return the stored Pod."""
    runner.wait(name, timeout=timeout)
    return k8s.get("pods", name)


def lines(runner, pod, container):
    return runner.logs(pod, container).splitlines()


# --- the rule -------------------------------------------------------------------------

def test_expansion_follows_kubernetes():
    env = {"A": "1", "B": "two"}.get
    assert expand("$(A)-$(B)", env) == "1-two"
    assert expand("$$(A)", env) == "$(A)"          # escaped
    assert expand("$(NOPE)", env) == "$(NOPE)"     # undefined: kept
    assert expand("$A ${A} $$ $", env) == "$A ${A} $ $"
    assert expand("$(A", env) == "$(A"             # unterminated
    assert expand("x$(A)y$(A)", env) == "x1y1"


def test_path_translation_rule(tmp_path):
    c = Container({"name": "c"}, False, 0, tmp_path)
    c.mapped = ["/app/alembic", "/etc/chartreuse", "/opt/chartreuse/bin/chartreuse"]
    root = str(c.root)
    assert c.translate("/app/alembic") == root + "/app/alembic"
    assert c.translate("/app/alembic/env.py") == root + "/app/alembic/env.py"
    assert c.translate("/etc/chartreuse/config.yaml") == root + "/etc/chartreuse/config.yaml"
    # a directory on the way to a mapped path, written as given (cp -R src/. dst/)
    assert c.translate("/opt/chartreuse/.") == root + "/opt/chartreuse/."
    assert c.translate("/opt/chartreuse/bin") == root + "/opt/chartreuse/bin"
    assert c.translate("/app/./alembic/") == root + "/app/./alembic/"
    # everything else is the host's
    for s in ("/usr/bin/python3", "/bin/sh", "/", "/etc/chartreusex", "/app/other",
              "relative/app/alembic", "--config=/etc/chartreuse/config.yaml",
              "postgresql://u@h/app", ""):
        assert c.translate(s) == s


def test_materialize_never_writes_outside_the_root(tmp_path):
    image_dir = tmp_path / "image-opt"
    (image_dir / "sub").mkdir(parents=True)
    (image_dir / "file").write_text("image")
    volume = tmp_path / "vol"
    volume.mkdir()
    (volume / "v").write_text("volume")
    root = tmp_path / "root"
    root.mkdir()
    materialize(root, "/opt/img", image_dir)
    materialize(root, "/opt/img/sub/mounted", volume)   # inside a mapped directory
    assert sorted(os.listdir(image_dir)) == ["file", "sub"]
    assert os.listdir(image_dir / "sub") == []
    assert (root / "opt/img/file").read_text() == "image"
    assert (root / "opt/img/sub/mounted/v").read_text() == "volume"
    materialize(root, "/opt/img", volume)               # a mount hides the image's dir
    assert (root / "opt/img/v").read_text() == "volume"
    assert sorted(os.listdir(image_dir)) == ["file", "sub"]


# --- running Pods ---------------------------------------------------------------------

def test_init_containers_run_in_order_then_the_containers(k8s, runner):
    append = ["/bin/sh", "-c", 'echo "$2" >>"$1"', "sh", "/work/order"]
    pod = job_pod(
        "ordered",
        init=[ctr("first", *append, "first", volumeMounts=[
                  {"name": "work", "mountPath": "/work"}]),
              ctr("second", *append, "second", volumeMounts=[
                  {"name": "work", "mountPath": "/work"}])],
        containers=[ctr("main", "cat", "/shared/order", volumeMounts=[
            {"name": "work", "mountPath": "/shared"}])],
        volumes=[{"name": "work", "emptyDir": {}}])
    k8s.put(pod)
    p = finish(runner, k8s, "ordered")
    assert p["status"]["phase"] == "Succeeded", runner.describe("ordered")
    assert lines(runner, "ordered", "main") == ["first", "second"]
    inits = statuses(p, "initContainerStatuses")
    assert [c["name"] for c in p["status"]["initContainerStatuses"]] == ["first", "second"]
    for c in inits.values():
        assert c["state"]["terminated"]["exitCode"] == 0
        assert c["state"]["terminated"]["reason"] == "Completed"
        assert c["ready"] is True
    main = statuses(p)["main"]
    assert main["state"]["terminated"] == {**main["state"]["terminated"], "exitCode": 0,
                                           "reason": "Completed"}
    assert main["containerID"].startswith("sim://")
    conds = {c["type"]: c["status"] for c in p["status"]["conditions"]}
    assert conds["Initialized"] == "True" and conds["Ready"] == "False"
    assert p["status"]["podIP"].startswith("10.245.")


def test_a_failing_init_container_stops_the_pod(k8s, runner):
    k8s.put(job_pod("init-fails",
                    init=[ctr("wait", "/bin/sh", "-c", "echo cannot reach it >&2; exit 3"),
                          ctr("never", "touch", "/tmp/should-not-run")],
                    containers=[ctr("main", "true")]))
    p = finish(runner, k8s, "init-fails")
    assert p["status"]["phase"] == "Failed"
    inits = statuses(p, "initContainerStatuses")
    assert inits["wait"]["state"]["terminated"]["exitCode"] == 3
    assert inits["wait"]["state"]["terminated"]["reason"] == "Error"
    assert inits["never"]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert statuses(p)["main"]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert runner.logs("init-fails", "wait") == "cannot reach it\n"
    assert runner.log_path("init-fails", "never") is None
    conds = {c["type"]: c for c in p["status"]["conditions"]}
    assert conds["Initialized"]["status"] == "False"


def test_the_pod_is_pending_while_init_containers_run_then_running(k8s, runner):
    k8s.put(job_pod("phases", init=[ctr("slow-init", "sleep", "0.6")],
                    containers=[ctr("main", "sleep", "0.6")]))
    seen = []

    def phase():
        p = k8s.get("pods", "phases")
        st = p.get("status") or {}
        init = statuses(p, "initContainerStatuses").get("slow-init", {})
        main = statuses(p).get("main", {})
        seen.append((st.get("phase"), tuple(init.get("state", {})),
                     tuple(main.get("state", {}))))
        return st.get("phase") in ("Succeeded", "Failed")
    k8s.wait_for(phase, timeout=20, interval=0.05)
    assert ("Pending", ("running",), ("waiting",)) in seen
    assert ("Running", ("terminated",), ("running",)) in seen
    assert seen[-1] == ("Succeeded", ("terminated",), ("terminated",))
    assert not any(s[0] == "Running" and s[1] != ("terminated",) for s in seen)


def test_env_from_secret_configmap_fields_and_expansion(k8s, runner):
    k8s.put({"apiVersion": "v1", "kind": "Secret",
             "metadata": {"name": "creds", "namespace": "default"},
             "data": {"USER": b64("alice"), "PASS": b64("s3 cr=t\n"), "9BAD": b64("x"),
                      "has space": b64("y")}})
    k8s.put({"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "settings", "namespace": "default"},
             "data": {"MODE": "from-envFrom", "LEVEL": "3"}})
    env = [
        {"name": "GREETING", "value": "hello"},
        {"name": "DB_USER", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "USER"}}},
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings",
                                                           "key": "LEVEL"}}},
        {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "NOPE",
                                                          "optional": True}}},
        {"name": "OPT2", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "K",
                                                        "optional": True}}},
        {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "JOB", "valueFrom": {"fieldRef": {
            "fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}}},
        {"name": "COMBINED", "value": "$(GREETING)-$(DB_USER)-$$(GREETING)-$(LATER)"},
        {"name": "LATER", "value": "later"},
    ]
    env_from = [{"secretRef": {"name": "creds"}, "prefix": "S_"},
                {"configMapRef": {"name": "settings"}},
                {"configMapRef": {"name": "absent", "optional": True}}]
    k8s.put(job_pod("env", containers=[
        ctr("printenv", "/usr/bin/env", env=env, envFrom=env_from),
        ctr("args", "/bin/echo", "$(GREETING)", "$$(GREETING)", "$(UNDEFINED)", "a$b",
            "$(S_USER)", env=env, envFrom=env_from)]))
    p = finish(runner, k8s, "env")
    assert p["status"]["phase"] == "Succeeded", runner.describe("env")
    text = runner.logs("env", "printenv")
    got = dict(line.split("=", 1) for line in text.split("\n") if "=" in line)
    assert got["GREETING"] == "hello"
    assert got["DB_USER"] == "alice"
    assert got["S_USER"] == "alice"
    assert "S_PASS=s3 cr=t\n" in text              # values as stored, newline included
    assert got["S_9BAD"] == "x"                    # a valid name once prefixed
    assert not any(" " in k for k in got)          # not a variable name: skipped
    assert got["MODE"] == "3"                      # env wins over envFrom
    assert got["LEVEL"] == "3"
    assert "OPT" not in got and "OPT2" not in got  # optional and missing: unset
    assert got["POD_NS"] == "default" and got["POD_NAME"] == "env"
    assert got["POD_IP"] == p["status"]["podIP"]
    assert got["JOB"] == "env"
    # a reference to a variable defined later stays as written, as in Kubernetes
    assert got["COMBINED"] == "hello-alice-$(GREETING)-$(LATER)"
    assert got["HOSTNAME"] == "env"
    assert got["KUBERNETES_SERVICE_HOST"] == k8s.host
    assert got["KUBERNETES_SERVICE_PORT"] == str(k8s.port)
    assert got["PATH"] == "/usr/bin:/bin"
    assert "PYTEST_CURRENT_TEST" not in got        # the test's environment is not passed
    assert runner.logs("env", "args") == "hello $(GREETING) $(UNDEFINED) a$b alice\n"


def test_a_missing_secret_keeps_the_container_waiting_until_it_exists(k8s, runner):
    k8s.put(job_pod("waits", containers=[ctr("main", "/usr/bin/env", env=[
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "later", "key": "t"}}}])]))

    def waiting():
        st = statuses(k8s.get("pods", "waits")).get("main", {}).get("state", {})
        return st.get("waiting", {}).get("reason") == "CreateContainerConfigError" and st
    st = k8s.wait_for(waiting, timeout=10, what="CreateContainerConfigError")
    assert 'secret "later" not found' in st["waiting"]["message"]
    assert k8s.get("pods", "waits")["status"]["phase"] == "Pending"
    k8s.put({"apiVersion": "v1", "kind": "Secret",
             "metadata": {"name": "later", "namespace": "default"},
             "stringData": {"t": "tok"}})
    p = finish(runner, k8s, "waits")
    assert p["status"]["phase"] == "Succeeded", runner.describe("waits")
    assert "TOKEN=tok" in lines(runner, "waits", "main")


def test_a_config_error_that_lasts_fails_the_pod_after_pending_timeout(k8s, runner):
    k8s.put(job_pod("gives-up", containers=[
        ctr("main", "true", env=[{"name": "X", "valueFrom": {"configMapKeyRef": {
            "name": "nope", "key": "x"}}}]),
        ctr("unmapped", "true", image="registry.example.com/unknown:1")]))
    t0 = time.monotonic()
    p = finish(runner, k8s, "gives-up")
    assert time.monotonic() - t0 >= 2.5
    assert p["status"]["phase"] == "Failed"
    assert "gave up" in p["status"]["message"]
    reasons = {n: c["state"].get("waiting", {}).get("reason")
               for n, c in statuses(p).items()}
    assert reasons == {"main": "CreateContainerConfigError", "unmapped": "ErrImagePull"}
    assert any("gave up" in e for e in runner.errors)


def test_configmap_and_secret_volumes_at_their_mount_paths(k8s, runner):
    k8s.put({"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "app-config", "namespace": "default"},
             "data": {"config.yaml": "a: 1\n", "other": "x"},
             "binaryData": {"blob": base64.b64encode(b"\x00\x01").decode()}})
    k8s.put({"apiVersion": "v1", "kind": "Secret",
             "metadata": {"name": "creds", "namespace": "default"},
             "data": {"USER": b64("alice")}})
    mounts = [{"name": "config", "mountPath": "/etc/app", "readOnly": True},
              {"name": "all", "mountPath": "/etc/all"},
              {"name": "config", "mountPath": "/config.yaml", "subPath": "conf/config.yaml"},
              {"name": "secret", "mountPath": "/var/secret"}]
    k8s.put(job_pod("volumes", containers=[
        ctr("cat", "cat", "/etc/app/conf/config.yaml", "/config.yaml", "/var/secret/USER",
            volumeMounts=mounts),
        ctr("stat", "stat", "-L", "-c", "%n %a", "/etc/app/conf/config.yaml",
            "/var/secret/USER", "/etc/all/blob", volumeMounts=mounts),
        ctr("ls", "ls", "/etc/app/conf", "/etc/all", volumeMounts=mounts)],
        volumes=[{"name": "config", "configMap": {
                     "name": "app-config", "defaultMode": 0o600,
                     "items": [{"key": "config.yaml", "path": "conf/config.yaml"}]}},
                 {"name": "all", "configMap": {"name": "app-config"}},
                 {"name": "secret", "secret": {"secretName": "creds", "defaultMode": 0o400}}]))
    p = finish(runner, k8s, "volumes")
    assert p["status"]["phase"] == "Succeeded", runner.describe("volumes")
    assert lines(runner, "volumes", "cat") == ["a: 1", "a: 1", "alice"]
    modes = [line.rsplit(" ", 1)[1] for line in lines(runner, "volumes", "stat")]
    assert modes == ["600", "400", "644"]
    assert "config.yaml" in lines(runner, "volumes", "ls")
    assert {"blob", "config.yaml", "other"} <= set(lines(runner, "volumes", "ls"))


def test_exit_codes_phase_and_logs(k8s, runner):
    k8s.put(job_pod("codes", containers=[
        ctr("ok", "/bin/sh", "-c", "echo fine"),
        ctr("bad", "/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 7"),
        ctr("tail", "/bin/sh", "-c", "echo last words; exit 2",
            terminationMessagePolicy="FallbackToLogsOnError")]))
    p = finish(runner, k8s, "codes")
    assert p["status"]["phase"] == "Failed"
    st = statuses(p)
    assert st["ok"]["state"]["terminated"]["exitCode"] == 0
    assert st["ok"]["state"]["terminated"]["reason"] == "Completed"
    assert st["bad"]["state"]["terminated"]["exitCode"] == 7
    assert st["bad"]["state"]["terminated"]["reason"] == "Error"
    assert st["tail"]["state"]["terminated"]["message"] == "last words"
    assert runner.logs("codes", "bad") == "to-stdout\nto-stderr\n"
    every = runner.logs("codes")
    assert "==> ok <==\nfine\n" in every and "==> bad <==" in every
    text = runner.describe("codes")
    assert "phase Failed" in text and "| to-stderr" in text and "'exitCode': 7" in text
    assert runner.log_path("codes", "bad").read_text() == "to-stdout\nto-stderr\n"


def test_argv_is_executed_without_a_shell(k8s, runner):
    k8s.put(job_pod("no-shell", containers=[
        ctr("echo", "echo", "$HOME", "*", "a;b", "`id`", "$(no)", "|")]))
    p = finish(runner, k8s, "no-shell")
    assert p["status"]["phase"] == "Succeeded"
    assert runner.logs("no-shell", "echo") == "$HOME * a;b `id` $(no) |\n"


def test_a_missing_executable_is_a_start_error(k8s, runner):
    k8s.put(job_pod("no-exe", containers=[ctr("main", "no-such-program-here", "x")]))
    p = finish(runner, k8s, "no-exe")
    assert p["status"]["phase"] == "Failed"
    term = statuses(p)["main"]["state"]["terminated"]
    assert term["exitCode"] == 128 and term["reason"] == "StartError"
    assert 'exec: "no-such-program-here": executable file not found in $PATH' in \
        term["message"]


def test_image_files_path_workdir_env_and_entrypoint(k8s, runner, tmp_path):
    app = tmp_path / "app-src"
    (app / "bin").mkdir(parents=True)
    tool = app / "bin" / "hello"
    tool.write_text('#!/bin/sh\necho "hello from $0 in $(pwd) with $GREETING: $*"\n')
    tool.chmod(0o755)
    runner.images["app:1"] = Image(files={"/app": app}, path=["/app/bin"],
                                   env={"GREETING": "image-env"}, workdir="/app",
                                   entrypoint=["hello"], cmd=["default", "args"])
    k8s.put(job_pod("image", containers=[
        {"name": "defaults", "image": "app:1"},
        {"name": "args", "image": "app:1", "args": ["given", "$(GREETING)"]},
        {"name": "cwd", "image": "app:1", "command": ["/bin/sh", "-c", "pwd"],
         "workingDir": "/app/bin"}]))
    p = finish(runner, k8s, "image")
    assert p["status"]["phase"] == "Succeeded", runner.describe("image")
    root = runner.run_of("image").mains[0].root
    assert runner.logs("image", "defaults") == \
        f"hello from {root}/app/bin/hello in {root}/app with image-env: default args\n"
    # the image's ENV is not seen by $(VAR) expansion, as in Kubernetes
    assert runner.logs("image", "args").endswith("image-env: given $(GREETING)\n")
    # PWD is the translated directory, so a shell's pwd shows it rather than the host's
    assert runner.logs("image", "cwd") == f"{runner.run_of('image').mains[2].root}/app/bin\n"
    assert os.listdir(app) == ["bin"] and os.listdir(app / "bin") == ["hello"]


def test_on_failure_restarts_the_container_until_it_succeeds(k8s, runner):
    script = 'if [ -e "$1" ]; then echo second; exit 0; fi; : >"$1"; echo first; exit 3'
    pod = job_pod("retry", containers=[
        ctr("main", "/bin/sh", "-c", script, "sh", "/scratch/marker",
            volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}])],
        volumes=[{"name": "scratch", "emptyDir": {}}])
    pod["spec"]["restartPolicy"] = "OnFailure"
    k8s.put(pod)
    p = finish(runner, k8s, "retry")
    assert p["status"]["phase"] == "Succeeded", runner.describe("retry")
    st = statuses(p)["main"]
    assert st["restartCount"] == 1
    assert st["lastState"]["terminated"]["exitCode"] == 3
    assert runner.logs("retry", "main") == "second\n"
    assert runner.log_path("retry", "main", attempt=1).read_text() == "first\n"


def test_pods_that_are_not_job_pods_are_left_to_the_kubelet(k8s, runner):
    pod = job_pod("web", containers=[ctr("web", "sleep", "60")])
    pod["spec"]["restartPolicy"] = "Always"
    k8s.put(pod)
    k8s.wait_for(lambda: (k8s.get("pods", "web").get("status") or {}).get("phase")
                 == "Running", timeout=10)
    assert runner.run_of("web") is None and runner.running() == []


def test_in_cluster_chartreuse_uses_the_service_account(k8s, runner):
    k8s.put({"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": "migrator", "namespace": "default"}})
    # release x as a restore Job finds it: its Deployment and ExpectedDeploymentScale (with
    # none, restore would ask whether the release exists: Helm's records, which the Job's
    # Role does not let it read)
    import k8s_objects
    k8s.put(k8s_objects.deployment("web", 1, release="x"))
    k8s.put(k8s_objects.eds("web", 1, "x"))
    # The restore Job's Role, bound to that account: the simulator enforces it.
    from rbac_helpers import load_role
    load_role(k8s, {"stopPods": True}, "x", account="migrator")
    k8s.put(job_pod("restore", serviceAccountName="migrator", containers=[
        ctr("restore", "chartreuse", "restore", "--release", "x", image="chartreuse"),
        ctr("files", "ls", SA_DIR, image="chartreuse")]))
    p = finish(runner, k8s, "restore")
    assert p["status"]["phase"] == "Succeeded", runner.describe("restore")
    assert lines(runner, "restore", "files") == ["ca.crt", "namespace", "token"]
    mine = [r for r in k8s.request_log if r.user == "system:serviceaccount:default:migrator"]
    assert mine, [str(r) for r in k8s.request_log]
    assert all(r.status == 200 for r in mine), [str(r) for r in mine]
    assert any("expecteddeploymentscales" in r.path for r in mine)
    token = (runner.run_of("restore").dir / "volumes/kube-api-access-sim/token").read_text()
    assert token not in k8s.tokens                 # revoked once the Pod's processes are gone


def test_no_token_without_automount(k8s, runner):
    k8s.put(job_pod("no-sa", automountServiceAccountToken=False, containers=[
        ctr("restore", "chartreuse", "restore", "--release", "x", image="chartreuse")]))
    p = finish(runner, k8s, "no-sa")
    assert p["status"]["phase"] == "Failed"
    assert "serviceaccount" in runner.logs("no-sa", "restore")


def running_pid(runner, k8s, name, container="main"):
    def pid():
        r = runner.run_of(name)
        c = r and next(c for c in r.inits + r.mains if c.name == container)
        p = c and c.proc
        return p and p.poll() is None and p.pid
    return k8s.wait_for(pid, timeout=10, what=f"{name}/{container} running")


def gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie not yet reaped by the runner's thread counts as gone too
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ", 1)[1].startswith("Z")


@pytest.mark.timing  # a wall-clock upper bound
def test_deleting_the_pod_kills_its_processes(k8s, runner):
    k8s.put(job_pod("doomed", containers=[ctr("main", "sleep", "60")],
                    terminationGracePeriodSeconds=0))
    pid = running_pid(runner, k8s, "doomed")
    k8s.wait_for(lambda: k8s.get("pods", "doomed")["status"]["phase"] == "Running")
    t0 = time.monotonic()
    k8s.delete("pods", "doomed")
    k8s.wait_for(lambda: gone(pid), timeout=5, what="sleep killed")
    assert time.monotonic() - t0 < 2                # SIGTERM ends sleep at once
    k8s.wait_for(lambda: k8s.get("pods", "doomed") is None, timeout=5)
    runner.wait("doomed", timeout=5)
    assert runner.running() == []


def test_a_process_ignoring_sigterm_gets_sigkill_after_the_grace_period(k8s, runner):
    k8s.put(job_pod("stubborn", terminationGracePeriodSeconds=1, containers=[
        ctr("main", "/bin/sh", "-c", "trap '' TERM; echo ready; sleep 60")]))
    pid = running_pid(runner, k8s, "stubborn")
    k8s.wait_for(lambda: runner.logs("stubborn", "main") == "ready\n")
    t0 = time.monotonic()
    k8s.delete("pods", "stubborn")
    k8s.wait_for(lambda: gone(pid), timeout=8, what="SIGKILL")
    # the kubelet's minimum grace period is 2 s, even when the Pod asks for 1
    assert 1.8 < time.monotonic() - t0 < 6


def test_a_container_past_its_deadline_is_killed(k8s, runner):
    runner.container_timeout = 0.5
    k8s.put(job_pod("hangs", containers=[ctr("main", "sleep", "60")]))
    p = finish(runner, k8s, "hangs")
    assert p["status"]["phase"] == "Failed"
    term = statuses(p)["main"]["state"]["terminated"]
    assert term["exitCode"] == 128 + signal.SIGTERM
    assert "deadline" in term["message"]
    assert any("hangs" in e and "deadline" in e for e in runner.errors)


def test_active_deadline_seconds_fails_the_pod(k8s, runner):
    k8s.put(job_pod("late", activeDeadlineSeconds=1, terminationGracePeriodSeconds=0,
                    containers=[ctr("main", "sleep", "60")]))
    p = finish(runner, k8s, "late")
    assert p["status"]["phase"] == "Failed"
    assert p["status"]["reason"] == "DeadlineExceeded"
    assert statuses(p)["main"]["state"]["terminated"]["exitCode"] == 143


def test_sim_stop_kills_everything_still_running(tmp_path):
    sim = K8sSim().start()
    try:
        runner = JobRunner(sim, images={"tools": Image()}, workdir=tmp_path, install=True)
        sim.put(job_pod("forever", init=[ctr("init", "sleep", "60")],
                        containers=[ctr("main", "true")]))
        pid = running_pid(runner, sim, "forever", "init")
    finally:
        sim.stop()
    assert gone(pid)
    assert runner.running() == []
    assert not runner.run_of("forever").is_alive()


def test_no_container_outlives_a_killed_test_process(tmp_path):
    script = f"""
import os, signal, sys, time
sys.path.insert(0, {str(REPO / "tests")!r})
from k8s_sim import K8sSim
from k8s_sim.jobrunner import Image, JobRunner
sim = K8sSim(tls=False).start()
runner = JobRunner(sim, images={{"tools": Image()}}, workdir={str(tmp_path)!r}, install=True)
sim.put({{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "p", "namespace": "default"}},
         "spec": {{"restartPolicy": "Never",
                   "containers": [{{"name": "c", "image": "tools",
                                    "command": ["sleep", "60"]}}]}}}})
pid = sim.wait_for(lambda: runner.run_of("p") and runner.run_of("p").mains[0].proc
                   and runner.run_of("p").mains[0].proc.pid, timeout=10)
print(pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == -signal.SIGKILL, out.stderr
    pid = int(out.stdout.split()[0])

    def dead():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    deadline = time.monotonic() + 5
    while not dead() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert dead()


# --- chartreuse's own migration Job ---------------------------------------------------

def alembic_head(directory):
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    cfg = Config()
    cfg.set_main_option("script_location", str(directory))
    return ScriptDirectory.from_config(cfg).get_heads()


@pytest.mark.parametrize("delivery", ["copy", "baked"])
def test_the_migration_job_pod_migrates_the_database(k8s, pg, tmp_path, delivery):
    db = pg.create_database(f"jobrunner_{delivery}_{uuid.uuid4().hex[:8]}")
    version = (REPO / "VERSION").read_text().strip()
    # alembicDirectory is chartreuse's default, written out so that config.yaml names it
    # and translate_config_files can point it at the image's project (see jobrunner.py)
    config = f"""\
apiVersion: chartreuse.wiremind.io/v1
kind: ChartreuseConfig
metadata: {{name: chartreuse}}
image: {{repository: registry.example.com/demo, tag: "1.0"}}
chartreuseImage: {{delivery: {delivery}}}
databases:
  - name: main
    url: "{pg.url(db)}"
    alembicDirectory: /app/alembic
"""
    res = post_render(config, "--release", "demo", "--namespace", "default")
    assert res.rc == 0, res.err.decode()
    objs = injected(res)
    for kind in ("ServiceAccount", "Role", "RoleBinding", "Secret", "ConfigMap"):
        for o in objs[kind]:
            k8s.put(o)
    job = next(j for j in objs["Job"] if j["metadata"]["name"].endswith("-upgrade"))
    spec = job["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["initContainers"]] == \
        (["chartreuse-binary"] if delivery == "copy" else []) + ["wait-postgres-main"]

    app = Image(files={"/app/alembic": REPO / "examples" / "alembic"}, workdir="/app",
                env={"PYTHONDONTWRITEBYTECODE": "1"})
    if delivery == "baked":
        app.files["/usr/local/bin/chartreuse"] = BIN
        app.path = ["/usr/local/bin"]
    runner = JobRunner(k8s, images={f"{IMAGE_REPOSITORY}:{version}": CHARTREUSE_IMAGE,
                                    "registry.example.com/demo:1.0": app},
                       workdir=tmp_path / "pods", translate_config_files=True,
                       container_timeout=120)
    k8s.kubelet_hook = runner
    k8s.put(job)  # the simulator's Job controller makes its Pod
    job_name = job["metadata"]["name"]
    k8s.wait_for(lambda: k8s.objects("pods", selector=f"job-name={job_name}"), timeout=10,
                 what="the Job's Pod")
    name = k8s.objects("pods", selector=f"job-name={job_name}")[0]["metadata"]["name"]
    assert runner.wait(name, timeout=150) == "Succeeded", runner.describe(name)
    k8s.wait_for(lambda: (k8s.get("jobs", job_name).get("status") or {}).get("succeeded"),
                 timeout=10, what="the Job's success")
    assert k8s.get("pods", name)["status"]["phase"] == "Succeeded"

    head = alembic_head(REPO / "examples" / "alembic")
    assert [r[0] for r in pg.psql(db, "SELECT version_num FROM alembic_version")] == head
    log = runner.logs(name, "migrate")
    assert "admin-pw" not in log                     # chartreuse masks the password
    sa = "system:serviceaccount:default:demo-chartreuse"
    assert any(r.user == sa for r in k8s.request_log), runner.describe(name)
    if delivery == "copy":
        copied = runner.run_of(name).volumes["chartreuse-binary"] / "bin" / "chartreuse"
        assert os.path.samefile(copied, BIN)
    runner.close()
