"""One command-line shape for migrate, status and restore (issue 10, part 4): the shared
release and cluster options, -o, a release or namespace that does not exist, nothing
checked, unknown options, help layout, completion, and the plugin's command list. On the
simulated API server and a real PostgreSQL."""
import json
import re
import shutil
import subprocess
import uuid
from functools import partial
from pathlib import Path

import pytest
import yaml

import alembic_projects as ap
import k8s_objects
from conftest import BIN, REPO, WRAPPER, plugin_source, run

RELEASE = "shop"
SCALES = {"api": 2, "web": 1}
STOPPED = "chartreuse.wiremind.io/stopped"
COMMANDS = ["migrate", "status", "restore"]

deployment = partial(k8s_objects.deployment, release=RELEASE)
eds = partial(k8s_objects.eds, release=RELEASE)


def wait_ready(k8s):
    def ready():
        return all(k8s.get("deployments", n).get("status", {}).get("readyReplicas", 0) == s
                   for n, s in SCALES.items())
    k8s.wait_for(ready, timeout=15, what="Deployments ready")


class Cluster:
    """A release of two Deployments; a kubeconfig whose current context is refused (so
    that only --kube-context sim-b reaches the cluster); a database at its heads."""

    def __init__(self, k8s, pg, tmp_path):
        self.k8s = k8s
        for name, scale in SCALES.items():
            k8s.put(deployment(name, scale))
            k8s.put(eds(name, scale))
        wait_ready(k8s)
        self.kubeconfig = k8s.kubeconfig(tmp_path / "kc", context="sim-b")
        kc = yaml.safe_load(self.kubeconfig.read_text())
        kc["users"].append({"name": "refused", "user": {"token": "not-a-valid-token"}})
        kc["contexts"].append({"name": "refused", "context": {
            "cluster": kc["contexts"][0]["context"]["cluster"], "user": "refused"}})
        kc["current-context"] = "refused"
        self.kubeconfig.write_text(yaml.safe_dump(kc))
        self.pg = pg
        self.db = "cli_" + uuid.uuid4().hex[:10]
        pg.create_database(self.db)
        self.project = ap.linear(tmp_path / "project", 2)
        self.config = tmp_path / "config.yaml"
        # the release and namespace come from the command line, never from here
        self.config.write_text(yaml.safe_dump({
            "stopPods": True,
            "databases": [{"name": "main", "alembicDirectory": str(self.project.path)}]}))
        # KUBECONFIG names nothing: --kubeconfig has to be what is read
        self.env = {"CHARTREUSE_DB_0_URL": pg.url(self.db),
                    "KUBECONFIG": str(tmp_path / "no-such-kubeconfig"),
                    "CHARTREUSE_RELEASE_NAME": "", "HELM_NAMESPACE": "",
                    "HELM_KUBECONTEXT": ""}

    def shared(self, release=RELEASE, namespace="default"):
        return [release, "-n", namespace, "--kubeconfig", str(self.kubeconfig),
                "--kube-context", "sim-b", "--config", str(self.config)]

    def run(self, command, *args, env=None):
        return run([command, *args], env={**self.env, **(env or {})}, timeout=180)

    def strand(self):
        for name in SCALES:
            self.k8s.patch("deployments", name, {"metadata": {"annotations": {STOPPED: "true"}}})
            self.k8s.scale("deployments", name, 0)

    def scales(self):
        return {n: self.k8s.get("deployments", n)["spec"]["replicas"] for n in SCALES}

    def writes(self):
        """What changed something (a SelfSubjectAccessReview is a question)."""
        return [r for r in self.k8s.request_log if r.method not in ("GET",)
                and not r.path.endswith("/selfsubjectaccessreviews")]

    def drop(self):
        self.pg.drop_database(self.db)


@pytest.fixture
def cluster(k8s, pg, tmp_path):
    c = Cluster(k8s, pg, tmp_path)
    yield c
    c.drop()


# --- each command takes the shared options ---------------------------------------------

def test_migrate_takes_release_namespace_context_kubeconfig_config(cluster):
    """The release and namespace from the command line, the cluster from --kubeconfig and
    --kube-context: the pods of that release are stopped around Alembic and started."""
    r = cluster.run("migrate", *cluster.shared())
    assert r.rc == 0, r.err.decode()
    patched = {p.path.split("/")[-2] for p in cluster.k8s.request_log
               if p.method == "PATCH" and p.path.endswith("/scale")}
    assert patched == set(SCALES)
    assert cluster.scales() == SCALES
    assert cluster.pg.psql(cluster.db, "SELECT version_num FROM alembic_version") == \
        [("lin0002",)]


def test_migrate_set_overrides_the_config(cluster):
    """--set stopPods=false over the config's stopPods: true: not one request to the
    cluster (its kubeconfig is refused anyway)."""
    cluster.k8s.request_log.clear()
    r = cluster.run("migrate", RELEASE, "--config", str(cluster.config),
                    "--set", "stopPods=false")
    assert r.rc == 0, r.err.decode()
    assert not cluster.k8s.request_log.filter(path="/apis/wiremind.io")


def test_migrate_without_the_context_reaches_no_cluster(cluster):
    """The kubeconfig's current context is refused: --kube-context is what made the run
    above work, not a default."""
    args = [a for a in cluster.shared() if a not in ("--kube-context", "sim-b")]
    r = cluster.run("migrate", *args)
    assert r.rc == 1
    assert cluster.scales() == SCALES


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_migrate_dry_run_output(cluster, fmt):
    r = cluster.run("migrate", *cluster.shared(), "--dry-run", "-o", fmt)
    assert r.rc == 0, r.err.decode()
    data = json.loads(r.out) if fmt == "json" else yaml.safe_load(r.out)
    assert data == {"dryRun": True, "databases": [
        {"name": "main", "decision": "migration-needed", "notApplied": ["lin0001", "lin0002"],
         "notAppliedComplete": True}]}
    assert not cluster.writes()
    table = cluster.run("migrate", *cluster.shared(), "--dry-run")
    assert table.rc == 0 and table.text.startswith("main: migration needed")


def test_migrate_output_needs_dry_run(cluster):
    r = cluster.run("migrate", *cluster.shared(), "-o", "json")
    assert r.rc == 2 and r.out == b""
    assert r.err_lines == ["chartreuse: error: migrate: -o needs --dry-run; see chartreuse "
                           "migrate --help"]
    assert not cluster.writes()


def test_status_takes_the_shared_options(cluster):
    assert cluster.run("migrate", *cluster.shared()).rc == 0
    wait_ready(cluster.k8s)
    r = cluster.run("status", *cluster.shared(), "-o", "json")
    data = json.loads(r.out)
    assert r.rc == 0, data["problems"]
    assert data["release"] == RELEASE and data["namespace"] == "default"
    assert data["databases"][0]["state"] == "up-to-date"
    assert [d["name"] for d in data["deployments"]] == ["api", "web"]
    # --set reaches the settings status reads
    r = cluster.run("status", *cluster.shared(), "-o", "json", "--set",
                    f"databases[0].alembicDirectory={cluster.project.path}/nowhere")
    data = json.loads(r.out)
    assert r.rc == 3 and data["databases"][0]["state"] == "unreadable"
    assert "nowhere" in data["databases"][0]["error"]


def test_restore_takes_the_shared_options(cluster):
    cluster.strand()
    r = cluster.run("restore", *cluster.shared(), "-o", "json")
    assert r.rc == 0, r.err.decode()
    data = json.loads(r.out)
    assert data == {"release": RELEASE, "namespace": "default", "trackedDeployments": 2,
                    "nothingStopped": False, "restoredDeployments": ["api", "web"],
                    "resumedHpas": []}
    assert cluster.scales() == SCALES


def test_restore_set_and_config_name_the_release(cluster):
    """--set release=... (over --config) names the release as RELEASE does."""
    cluster.strand()
    args = ["-n", "default", "--kubeconfig", str(cluster.kubeconfig),
            "--kube-context", "sim-b", "--config", str(cluster.config)]
    r = cluster.run("restore", *args, "--set", f"release={RELEASE}")
    assert r.rc == 0, r.err.decode()
    assert cluster.scales() == SCALES


@pytest.mark.parametrize("command", COMMANDS)
def test_helm_variables_stand_for_namespace_and_context(cluster, command):
    """Under `helm chartreuse`, Helm keeps -n and --kube-context and passes HELM_NAMESPACE
    and HELM_KUBECONTEXT (KUBECONFIG for --kubeconfig): each command reads them."""
    cluster.strand()
    env = {"HELM_NAMESPACE": "default", "HELM_KUBECONTEXT": "sim-b",
           "KUBECONFIG": str(cluster.kubeconfig)}
    extra = {"migrate": [], "status": ["-o", "json"], "restore": []}[command]
    r = cluster.run(command, RELEASE, "--config", str(cluster.config), *extra, env=env)
    if command == "status":
        data = json.loads(r.out)
        assert r.rc == 1 and data["namespace"] == "default"
        assert {d["state"] for d in data["deployments"]} == {"stopped"}
    else:
        assert r.rc == 0, r.err.decode()
        assert cluster.scales() == SCALES  # started again / restored


# --- a release or namespace that does not exist ------------------------------------------

@pytest.mark.parametrize("command", ["status", "restore"])
def test_a_release_that_does_not_exist(cluster, command):
    cluster.k8s.request_log.clear()
    r = cluster.run(command, *cluster.shared(release="shopp"), "-o", "json")
    assert r.rc == 4 and r.out == b""
    assert r.err_lines == [
        f"chartreuse: error: {command}: no release named shopp in namespace default (no "
        "Helm release record, no ExpectedDeploymentScale): check the name with helm list "
        "-n default"]
    assert not cluster.writes()
    # Helm's record of it (its storage Secret) is enough for it to exist
    cluster.k8s.put({"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
                     "metadata": {"name": "sh.helm.release.v1.shopp.v1",
                                  "namespace": "default",
                                  "labels": {"owner": "helm", "name": "shopp"}},
                     "data": {"release": "e30="}})
    r = cluster.run(command, *cluster.shared(release="shopp"), "-o", "json")
    data = json.loads(r.out)
    if command == "status":
        assert r.rc == 1 and data["databases"][0]["state"] == "migration-needed"
    else:
        assert r.rc == 0 and data["trackedDeployments"] == 0 and data["nothingStopped"]


def test_a_secret_of_another_owner_is_no_release_record(cluster):
    cluster.k8s.put({"apiVersion": "v1", "kind": "Secret",
                     "metadata": {"name": "shopp", "namespace": "default",
                                  "labels": {"name": "shopp"}}})
    assert cluster.run("status", *cluster.shared(release="shopp")).rc == 4


@pytest.mark.parametrize("command", ["status", "restore"])
def test_a_namespace_that_does_not_exist(cluster, command):
    r = cluster.run(command, *cluster.shared(namespace="prodd"))
    assert r.rc == 4 and r.out == b""
    assert r.err_lines == [f"chartreuse: error: {command}: no namespace named prodd (release "
                           "shop): check -n/--namespace and --kube-context"]


def test_status_with_no_database_readable_never_says_at_its_heads(cluster, tmp_path):
    """Nothing checked: no database configured, or none readable: exit 3, and the verdict
    line is not "everything at its heads"."""
    empty = tmp_path / "empty.yaml"
    empty.write_text("stopPods: true\n")
    for config, env in ((empty, {}), (cluster.config, {"CHARTREUSE_DB_0_URL": ""})):
        args = [a if a != str(cluster.config) else str(config) for a in cluster.shared()]
        r = cluster.run("status", *args, env=env)
        assert r.rc == 3, r.text
        assert "everything at its heads" not in r.text
        assert "Status: unknown" in r.text


def test_status_errors_are_printed_once(cluster, tmp_path):
    """An unknown context: one line on stderr, and the report does not say "kubernetes:"
    twice."""
    args = [a if a != "sim-b" else "nope" for a in cluster.shared()]
    r = cluster.run("status", *args, "-o", "json")
    data = json.loads(r.out)
    assert r.rc == 1  # the database needs a migration: that outweighs the unread cluster
    assert data["kubernetesError"] and data["deployments"] is None
    context_lines = [l for l in r.err_lines if "nope" in l]
    assert len(context_lines) == 1
    assert not any("kubernetes: kubernetes" in p for p in data["problems"])
    table = cluster.run("status", *args)
    assert "kubernetes: kubernetes" not in table.text


# --- restore says what it did -------------------------------------------------------------

def test_restore_with_nothing_stopped_says_so(cluster):
    cluster.k8s.request_log.clear()
    r = cluster.run("restore", *cluster.shared())
    assert r.rc == 0, r.err.decode()
    assert r.text == ("Release shop in namespace default: nothing was stopped (2 "
                      "Deployments tracked, none stopped by chartreuse, no HPA paused)\n")
    assert not cluster.writes()
    r = cluster.run("restore", *cluster.shared(), "-o", "yaml")
    assert r.rc == 0 and yaml.safe_load(r.out)["nothingStopped"] is True


def test_restore_table_lists_what_it_brought_back(cluster):
    cluster.strand()
    r = cluster.run("restore", *cluster.shared())
    assert r.rc == 0, r.err.decode()
    assert r.text.splitlines() == [
        "Release shop in namespace default: restored",
        "  Deployment api: scaled back to its expectedScale",
        "  Deployment web: scaled back to its expectedScale"]


# --- unknown options, usage ----------------------------------------------------------------

@pytest.mark.parametrize("command", COMMANDS + ["wait", "version", "completion"])
def test_unknown_option_names_the_command(command, tmp_path):
    r = run([command, "--foo"], env={"KUBECONFIG": str(tmp_path / "none")})
    assert r.rc == 2 and r.out == b""
    assert len(r.err_lines) == 1 and r.err_lines[0].startswith(f"chartreuse: error: {command}")
    if command in COMMANDS:
        assert r.err_lines == [f"chartreuse: error: {command}: unknown option --foo; see "
                               f"chartreuse {command} --help"]


def test_an_unknown_leading_option_is_no_post_render():
    """`chartreuse --foo` (stdin not a terminal) used to be taken for a post-render."""
    r = run(["--foo"], stdin=b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    assert r.rc == 2 and r.out == b""
    assert r.err_lines == ["chartreuse: error: unknown option --foo; see chartreuse --help"]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_second_release_is_bad_usage(command):
    r = run([command, "a", "b"], env={"CHARTREUSE_RELEASE_NAME": ""})
    assert r.rc == 2 and r.out == b""
    assert r.err_lines == [f"chartreuse: error: {command}: unexpected argument b: the release "
                           f"is a already; see chartreuse {command} --help"]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("option", ["-n", "--namespace", "--kube-context", "--kubeconfig",
                                    "--config", "--set", "-o"])
def test_every_shared_option_needs_its_value(command, option):
    r = run([command, "x", option])
    assert r.rc == 2 and r.out == b""
    assert r.err_lines == [f"chartreuse: error: {option} needs a value"]


@pytest.mark.parametrize("command", COMMANDS)
def test_bad_output_format(command):
    r = run([command, "x", "-o", "xml"])
    assert r.rc == 2
    assert r.err_lines == [f"chartreuse: error: {command}: -o expects table, json or yaml, "
                           "got xml"]


ALL = ["post-render", "template", "install", "upgrade", "migrate", "status", "wait",
       "restore", "completion", "version"]


@pytest.mark.parametrize("command", ALL)
def test_help_texts_share_one_layout(command):
    """Usage line, a one-line description, an Options table, the exit statuses."""
    r = run([command, "--help"])
    assert r.rc == 0
    blocks = r.text.split("\n\n")
    assert blocks[0].startswith("usage: chartreuse ")
    assert len(blocks[1].splitlines()) == 1 and blocks[1].endswith(".")
    assert re.search(r"^Options( \(.*\))?:\n  ", r.text, re.M)
    exit_block = r.text[r.text.index("\nExit status:\n"):]
    assert re.search(r"^  0 ", exit_block, re.M)
    assert run(["help", command]).out == r.out


@pytest.mark.parametrize("command", COMMANDS)
def test_help_lists_the_shared_options(command):
    text = run([command, "--help"]).text
    for option in ("RELEASE", "-n, --namespace", "--kube-context", "--kubeconfig",
                   "--config", "--set", "-o, --output", "HELM_NAMESPACE", "HELM_KUBECONTEXT",
                   "KUBECONFIG"):
        assert option in text, (command, option)


def test_overview_lists_every_command_and_version():
    r = run(["--help"])
    assert r.rc == 0 and "--version" in r.text
    for command in ALL:
        assert re.search(rf"^  {re.escape(command)} ", r.text, re.M), command
    assert run(["--version"]).text == run(["version"]).text


# --- completion ----------------------------------------------------------------------------

def test_bash_completion_loads_and_completes():
    script = run(["completion", "bash"])
    assert script.rc == 0
    check = subprocess.run(
        ["bash", "-c", f'source <("$0" completion bash); complete -p chartreuse; '
         'COMP_WORDS=(chartreuse st); COMP_CWORD=1; _chartreuse; echo "${COMPREPLY[*]}"; '
         'COMP_WORDS=(chartreuse restore --kube); COMP_CWORD=2; _chartreuse; '
         'echo "${COMPREPLY[*]}"', BIN], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    lines = check.stdout.splitlines()
    assert lines[0] == "complete -o default -F _chartreuse chartreuse"
    assert lines[1] == "status"
    assert lines[2] == "--kube-context --kubeconfig"


@pytest.mark.skipif(not shutil.which("zsh"), reason="zsh is not installed")
def test_zsh_completion_loads():
    check = subprocess.run(["zsh", "-c", 'autoload -U compinit; compinit -u; '
                            'source <("$0" completion zsh); print ${_comps[chartreuse]}', BIN],
                           capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout.strip() == "_chartreuse", check.stderr


def test_zsh_completion_lists_every_command():
    r = run(["completion", "zsh"])
    assert r.rc == 0 and r.text.startswith("#compdef chartreuse\n")
    for command in ALL:
        assert f"\t\t'{command}:" in r.text
    assert "compdef _chartreuse chartreuse" in r.text


def test_completion_of_another_shell_is_bad_usage():
    r = run(["completion", "fish"])
    assert r.rc == 2 and r.out == b""


# --- the Helm plugin -----------------------------------------------------------------------

def test_plugin_yaml_lists_every_command():
    plugin = yaml.safe_load((REPO / "plugin.yaml").read_text())
    assert "apiVersion" not in plugin  # Helm 3 refuses it (SPEC §3)
    for command in ["install", "upgrade", "template", "post-render", "migrate", "status",
                    "restore", "wait", "completion", "version"]:
        assert re.search(rf"helm chartreuse .*\b{re.escape(command)}\b",
                         plugin["description"]), command


@pytest.mark.helm
@pytest.mark.parametrize("major", [3, 4], ids=["helm3", "helm4"])
def test_helm_help_chartreuse_lists_every_command(major, tmp_path):
    from test_helm import Helm
    h = Helm(major, tmp_path / "helm")
    h.run("plugin", "install", str(plugin_source()))
    out = h.run("help", "chartreuse").stdout
    for command in ["migrate", "status", "restore", "completion", "post-render"]:
        assert f"helm chartreuse {command}" in out, (command, out)
