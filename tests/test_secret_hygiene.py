"""Secret hygiene: chartreuse run the ways it runs, with distinctive passwords, and every
byte it writes searched for them — stdout, stderr, the files it leaves in its working
directory, HOME and TMPDIR (and new files in /tmp and /dev/shm), every emitted object but
the Secret's data/stringData, every body sent to the (simulated) Kubernetes API and every
object left there, and the command lines (/proc/<pid>/cmdline) of chartreuse and its
children (alembic) sampled while they run. A password is searched raw, percent-encoded
(as it stands in a URL), escaped as an ini file or JSON would hold it, and base64-encoded at
every alignment (so it is found inside a longer base64 text too).

What is allowed: the Secret's data (that is its job), and the environment of the alembic
child (CHARTREUSE_ALEMBIC_URL, readable only by the same user and root; see
docs/security.md)."""
import base64
import json
import os
import re
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import yaml

import alembic_projects as ap
from conftest import BIN, WRAPPER, run

# One per way in, so that a hit says which way leaked.
PW_CONFIG = "HygCfg-7f3a@/:%w0rd'"      # post-render: a --config file
PW_SET = "HygSet-91c2#?&p4ss w0rd"      # post-render: --set
PW_URL = "HygUrl-3b6d@:/%+x9q"          # post-render: a database given whole by URL
PW_ES = "HygEs-0a9f@:/x7mz"             # post-render: the eslembic URL
PW_CHART = "HygChart-2d4c\"#: x"        # post-render: the chart's ChartreuseConfig document
PW_DB = "HygDb-5e8d@:/%'\" w0rd"        # migrate / wait / status: the PostgreSQL role
TOKEN = "HygTok-c4e1a9b7d2f80e"         # status: the kubeconfig's bearer token


def _b64_middles(raw):
    """Base64 of raw as it appears inside any longer base64 text: at each of the three
    alignments, the characters that depend on raw alone."""
    out = {}
    for k in range(3):
        for name, enc in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            text = enc(b"\0" * k + raw)
            start = 4 if k else 0
            out[f"{name}@{k}"] = text[start:len(text) - 4]
    return out


def forms(secret):
    raw = secret.encode()
    pct = quote(secret, safe="")
    f = {
        "raw": raw,
        "percent-encoded": pct.encode(),
        "percent-encoded (lower-case hex)": re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(),
                                                   pct).encode(),
        "URL-quoted": quote(secret).encode(),
        "form-encoded": quote_plus(secret).encode(),
        "ini-escaped": secret.replace("%", "%%").encode(),
        "ini-escaped URL part": pct.replace("%", "%%").encode(),
        "JSON-escaped": json.dumps(secret)[1:-1].encode(),
        "YAML single-quoted": secret.replace("'", "''").encode(),
    }
    for src, data in (("raw", raw), ("percent-encoded", pct.encode())):
        for name, mid in _b64_middles(data).items():
            f[f"{name} of {src}"] = mid
    return f


def hits(blob, where, secrets):
    """Every (secret, form) found in blob, as 'where: secret NAME as FORM'."""
    found = []
    for name, secret in secrets.items():
        for form, needle in forms(secret).items():
            if needle and needle in blob:
                found.append(f"{where}: {name} as {form}")
    return found


def scan_tree(root, secrets, skip=()):
    found = []
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath, f)
            if p in skip or p.is_symlink() or not p.is_file():
                continue
            try:
                found += hits(p.read_bytes(), f"file {p}", secrets)
            except OSError:
                pass  # gone meanwhile (another process's temporary file)
    return found


def shared_tmp_snapshot():
    """Files under /tmp and /dev/shm now, to scan the ones a run adds."""
    files = set()
    for root in ("/tmp", "/dev/shm"):
        for dirpath, dirs, names in os.walk(root, onerror=lambda e: None):
            files.update(Path(dirpath, n) for n in names)
    return files


def scan_new_shared_files(before, secrets):
    found = []
    for p in shared_tmp_snapshot() - before:
        try:
            if p.is_file() and not p.is_symlink():
                found += hits(p.read_bytes(), f"file {p}", secrets)
        except OSError:
            pass
    return found


class Sandbox:
    """A working directory, HOME and TMPDIR of its own for one run, all scanned after."""

    def __init__(self, tmp_path):
        self.root = tmp_path / "sandbox"
        self.cwd, self.home, self.tmp = (self.root / d for d in ("cwd", "home", "tmp"))
        for d in (self.cwd, self.home, self.tmp):
            d.mkdir(parents=True)
        self.env = {"HOME": str(self.home), "TMPDIR": str(self.tmp)}


def descendants(root_pid):
    """root_pid and every process below it, read from /proc."""
    parent = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        parent[int(entry)] = int(fields[1])
    found, frontier = {root_pid}, [root_pid]
    while frontier:
        p = frontier.pop()
        for child, ppid in parent.items():
            if ppid == p and child not in found:
                found.add(child)
                frontier.append(child)
    return found


def run_sampled(args, env, cwd, out_dir, timeout=180):
    """Runs chartreuse, reading the command line of it and its descendants every few
    milliseconds. Returns (rc, stdout, stderr, {argv as bytes})."""
    full_env = {**os.environ, **env}
    out_path, err_path = out_dir / "stdout", out_dir / "stderr"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(WRAPPER + [BIN] + list(args), env=full_env, cwd=cwd,
                                stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        cmdlines = set()
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"chartreuse {' '.join(args)} did not end in {timeout} s")
            for pid in descendants(proc.pid):
                try:
                    cmdlines.add(Path("/proc", str(pid), "cmdline").read_bytes())
                except OSError:
                    pass
            time.sleep(0.01)
    return proc.returncode, out_path.read_bytes(), err_path.read_bytes(), cmdlines


def assert_clean(found):
    assert not found, "passwords leaked:\n  " + "\n  ".join(sorted(set(found)))


# --- post-render ------------------------------------------------------------------------------

MANIFESTS = """\
---
# Source: demo/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo-web
  namespace: prod
  labels: {app.kubernetes.io/instance: demo}
spec:
  template:
    spec:
      containers: [{name: web, image: "registry.example.com/demo:1.0"}]
"""


def chart_document(password):
    return "---\n# Source: demo/templates/chartreuse.yaml\n" + yaml.safe_dump({
        "apiVersion": "chartreuse.wiremind.io/v1", "kind": "ChartreuseConfig",
        "image": {"repository": "registry.example.com/demo", "tag": "1.0"},
        "databases": [{"name": "main", "host": "db", "user": "app", "password": password,
                       "database": "app"}],
    })


def split_documents(text):
    return [d for d in re.split(r"(?m)^---[ \t]*$", text) if d.strip()]


def check_rendered(stdout, secrets):
    """Hits outside the Secret's data; and the Secret must hold every password (else this
    test would prove nothing)."""
    found, kinds, secret_blob = [], [], b""
    for i, text in enumerate(split_documents(stdout.decode())):
        doc = yaml.safe_load(text)
        kind = doc.get("kind")
        kinds.append(kind)
        where = f"stdout document {i + 1} ({kind} {doc.get('metadata', {}).get('name')})"
        if kind == "Secret":
            for key in ("data", "stringData"):
                for k, v in (doc.pop(key, None) or {}).items():
                    secret_blob += (base64.b64decode(v) if key == "data" else v.encode()) + b"\n"
            found += hits(yaml.safe_dump(doc).encode(), where, secrets)
        else:
            found += hits(text.encode(), where, secrets)
    for name, secret in secrets.items():
        assert hits(secret_blob, "Secret", {name: secret}), \
            f"{name} is not in the Secret: the test would prove nothing"
    return found, kinds


@pytest.mark.parametrize("source", ["config-file-and-set", "chart-document"])
def test_post_render_writes_passwords_only_into_the_secret(source, tmp_path):
    box = Sandbox(tmp_path)
    given = tmp_path / "given"
    given.mkdir()
    if source == "config-file-and-set":
        secrets = {"PW_CONFIG": PW_CONFIG, "PW_SET": PW_SET, "PW_URL": PW_URL, "PW_ES": PW_ES}
        config = given / "config.yaml"
        config.write_text(yaml.safe_dump({
            "image": {"repository": "registry.example.com/demo"},
            "databases": [
                {"name": "main", "host": "db", "user": "app", "password": PW_CONFIG,
                 "database": "app"},
                {"name": "second", "host": "db2", "user": "app2", "database": "app2"},
                {"name": "third", "url": "postgresql://app3:" + quote(PW_URL, safe="")
                 + "@db3:5432/app3"},
            ],
            "eslembic": {"url": "http://elastic:" + quote(PW_ES, safe="") + "@es:9200",
                         "migrate": True, "cleanIndex": True},
        }))
        stdin = MANIFESTS
        args = ["--config", str(config), "--set", f"databases[1].password={PW_SET}"]
    else:
        secrets = {"PW_CHART": PW_CHART}
        stdin = MANIFESTS + chart_document(PW_CHART)
        args = []
    before = shared_tmp_snapshot()
    r = run(["post-render", "--release", "demo", "--namespace", "prod", *args],
            stdin=stdin, env=box.env, cwd=box.cwd)
    assert r.rc == 0, r.err.decode()
    found, kinds = check_rendered(r.out, secrets)
    assert {"ConfigMap", "Job", "Secret", "Role"} <= set(kinds), kinds
    assert "ChartreuseConfig" not in kinds  # the chart's document (and its password) is removed
    found += hits(r.err, "stderr", secrets)
    found += scan_tree(box.root, secrets)
    found += scan_new_shared_files(before, secrets)
    assert_clean(found)


def test_a_failing_post_render_does_not_show_the_password(tmp_path):
    """An error about a database entry names it, not its password."""
    box = Sandbox(tmp_path)
    r = run(["post-render", "--release", "demo", "--namespace", "prod",
             "--set", f"databases[0].password={PW_SET}", "--set", "databases[0].port=0",
             "--set", "image.repository=x", "--set", "databases[0].host=h"],
            stdin=MANIFESTS, env=box.env, cwd=box.cwd)
    assert r.rc != 0 and r.out == b""
    assert_clean(hits(r.err, "stderr", {"PW_SET": PW_SET}) + scan_tree(box.root, {"PW_SET": PW_SET}))


# --- migrate, wait, status against the real PostgreSQL ------------------------------------------

@pytest.fixture
def database(pg):
    name = "hyg_" + uuid.uuid4().hex[:10]
    owner = "own_" + name
    pg.create_database(name, owner=owner, owner_password=PW_DB)
    yield pg, name, owner
    pg.drop_database(name, owner=owner)


def sleeping_project(root, seconds=1.5):
    """One revision whose upgrade sleeps, so that Alembic lives long enough to be seen."""
    specs = [("hyg01", None, {"upgrade": f'op.execute("SELECT pg_sleep({seconds})")\n    '
                                        + ap.create_table("hyg01")})]
    return ap._project(root, specs, ["hyg01"])


def migrate_config(tmp_path, project, **top):
    path = tmp_path / "given" / "config.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump({
        "release": "demo", "stopPods": False, **top,
        "databases": [{"name": "main", "alembicDirectory": str(project.path),
                       "alembicConfigFile": project.ini}]}))
    return path


SECRETS_DB = {"PW_DB": PW_DB}


@pytest.mark.parametrize("scenario", ["upgrade", "upgrade-password-apart", "failing", "dry-run",
                                      "bad-password"])
def test_migrate_leaks_no_password(scenario, database, tmp_path):
    pg, name, owner = database
    box = Sandbox(tmp_path)
    project = (ap.failing(tmp_path / "project") if scenario == "failing"
               else sleeping_project(tmp_path / "project"))
    config = migrate_config(tmp_path, project)
    password = PW_DB if scenario != "bad-password" else PW_DB + "-wrong"
    secrets = {"PW_DB": PW_DB, "password given": password}
    env = dict(box.env)
    if scenario == "upgrade-password-apart":
        env["CHARTREUSE_DB_0_URL"] = pg.url(name, user=owner, password=None)
        env["CHARTREUSE_DB_0_PASSWORD"] = password
    else:
        env["CHARTREUSE_DB_0_URL"] = pg.url(name, user=owner, password=password)
    assert password in env.get("CHARTREUSE_DB_0_PASSWORD", "") or \
        quote(password, safe="") in env["CHARTREUSE_DB_0_URL"]
    args = ["migrate", "--config", str(config)] + (["--dry-run"] if scenario == "dry-run" else [])
    before = shared_tmp_snapshot()
    rc, out, err, cmdlines = run_sampled(args, env, box.cwd, tmp_path)
    expected_rc = {"upgrade": 0, "upgrade-password-apart": 0, "dry-run": 0, "failing": 1,
                   "bad-password": 1}[scenario]
    assert rc == expected_rc, err.decode()
    if scenario.startswith("upgrade") or scenario == "failing":
        assert any(b"alembic" in c and b"upgrade" in c for c in cmdlines), \
            f"alembic was never seen running: {cmdlines}"
    found = hits(out, "stdout", secrets) + hits(err, "stderr", secrets)
    for c in cmdlines:
        found += hits(c, "command line " + c.replace(b"\0", b" ").decode(errors="replace"),
                      secrets)
    found += scan_tree(box.root, secrets)
    found += scan_tree(project.path, secrets)   # nothing written next to the project
    found += scan_new_shared_files(before, secrets)
    assert_clean(found)


def test_wait_postgres_leaks_no_password(database, tmp_path):
    """Answering, with a wrong password (which still answers: wait only waits for the
    server), and nobody listening (the failure names the masked URL)."""
    from pgserver import free_port
    pg, name, owner = database
    box = Sandbox(tmp_path)
    found = []
    for password, port, want in ((PW_DB, None, 0), (PW_DB + "-wrong", None, 0),
                                 (PW_DB, free_port(), 1)):
        url = pg.url(name, user=owner, password=password, port=port)
        env = {**box.env, "CHARTREUSE_DB_0_URL": url}
        rc, out, err, cmdlines = run_sampled(
            ["wait", "postgres", "--url-env", "CHARTREUSE_DB_0_URL", "--timeout", "2"],
            env, box.cwd, tmp_path)
        assert rc == want, err.decode()
        secrets = {"PW_DB": PW_DB, "password given": password}
        found += hits(out, "stdout", secrets) + hits(err, "stderr", secrets)
        for c in cmdlines:
            found += hits(c, "command line", secrets)
    found += scan_tree(box.root, SECRETS_DB)
    assert_clean(found)


def test_status_leaks_no_password_nor_token(database, tmp_path):
    """status reads the database (its password in the URL) and the cluster (a bearer token
    in the kubeconfig; nobody listens there, so the cluster part fails and is reported)."""
    from pgserver import free_port
    pg, name, owner = database
    box = Sandbox(tmp_path)
    project = ap.linear(tmp_path / "project", 2)
    config = migrate_config(tmp_path, project, namespace="default")
    kubeconfig = tmp_path / "given" / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": f"https://127.0.0.1:{free_port()}",
                                               "insecure-skip-tls-verify": True}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": TOKEN}}]}))
    secrets = {"PW_DB": PW_DB, "TOKEN": TOKEN}
    env = {**box.env, "KUBECONFIG": str(kubeconfig),
           "CHARTREUSE_DB_0_URL": pg.url(name, user=owner, password=PW_DB)}
    found = []
    for fmt in ("table", "json", "yaml"):
        rc, out, err, cmdlines = run_sampled(["status", "--config", str(config), "-o", fmt],
                                             env, box.cwd, tmp_path)
        # a migration is needed (1) or the cluster could not be read (3); the database was
        assert rc in (1, 3), err.decode()
        assert b"lin0001" in out
        found += hits(out, f"stdout (-o {fmt})", secrets) + hits(err, "stderr", secrets)
        for c in cmdlines:
            found += hits(c, "command line", secrets)
    found += scan_tree(box.root, secrets)
    assert_clean(found)


def test_the_scanner_finds_what_it_looks_for():
    """The search itself: a password inside a longer base64 text, percent-encoded, ini-
    escaped."""
    secrets = {"PW_DB": PW_DB}
    for blob in (base64.b64encode(b"postgresql://u:" + PW_DB.encode() + b"@h/d"),
                 base64.b64encode(b"xy" + quote(PW_DB, safe="").encode()),
                 b"sqlalchemy.url = postgresql://u:" + quote(PW_DB, safe="").replace(
                     "%", "%%").encode() + b"@h/d",
                 b"pw: '" + PW_DB.replace("'", "''").encode() + b"'"):
        assert hits(blob, "blob", secrets), blob
    assert not hits(b"postgresql://u:***@h/d", "blob", secrets)


# --- migrate and restore against the cluster ----------------------------------------------

def scan_cluster(k8s, secrets):
    """Every body chartreuse sent to the API, and every object the cluster holds after."""
    found = []
    for r in k8s.request_log:
        if r.body:
            found += hits(r.body, f"API request {r.method} {r.path}", secrets)
    for kind in ("deployments", "horizontalpodautoscalers", "expecteddeploymentscales",
                 "configmaps", "jobs", "pods", "events"):
        try:
            objects = k8s.objects(kind)
        except Exception:  # a kind the simulator does not serve
            continue
        for obj in objects:
            found += hits(json.dumps(obj).encode(), f"stored {kind} "
                          f"{obj['metadata'].get('name')}", secrets)
    return found


def test_migrate_with_pods_and_restore_leak_no_password_nor_token(database, k8s, tmp_path):
    """The pod flow writes annotations (the stopped state, the HPA's behaviour) and
    scales; a restore reads them back. None of that may carry a password or the token."""
    import k8s_objects
    pg, name, owner = database
    box = Sandbox(tmp_path)
    k8s.add_token(TOKEN, "hygiene")
    for app, prio in (("api", 10), ("worker", 0)):
        k8s.put(k8s_objects.deployment(app, 1, release="demo"))
        k8s.put(k8s_objects.eds(app, 1, release="demo", priority=prio))
    k8s.put(k8s_objects.hpa("api", {"scaleDown": {"stabilizationWindowSeconds": 60}}))
    kubeconfig = k8s.kubeconfig(tmp_path / "given" / "kubeconfig", token=TOKEN)
    project = sleeping_project(tmp_path / "project", seconds=0.5)
    config = migrate_config(tmp_path, project, stopPods=True, namespace="default")
    secrets = {"PW_DB": PW_DB, "TOKEN": TOKEN}
    env = {**box.env, "KUBECONFIG": str(kubeconfig),
           "CHARTREUSE_DB_0_URL": pg.url(name, user=owner, password=PW_DB)}
    before = shared_tmp_snapshot()
    found = []
    for args in (["migrate", "--config", str(config)],
                 ["restore", "--release", "demo", "--namespace", "default"]):
        rc, out, err, cmdlines = run_sampled(args, env, box.cwd, tmp_path)
        assert rc == 0, err.decode()
        found += hits(out, f"{args[0]} stdout", secrets) + hits(err, f"{args[0]} stderr",
                                                                  secrets)
        for c in cmdlines:
            found += hits(c, "command line", secrets)
    # The flow did run: both Deployments were scaled to 0 and back, the HPA paused.
    scaled = [(r.path.split("/")[-2], json.loads(r.body)["spec"]["replicas"])
              for r in k8s.request_log if r.method == "PATCH" and r.path.endswith("/scale")]
    assert ("api", 0) in scaled and ("worker", 0) in scaled and ("api", 1) in scaled, scaled
    assert any(r.method == "PATCH" and "horizontalpodautoscalers" in r.path
               for r in k8s.request_log)
    assert any(r.user == "hygiene" for r in k8s.request_log)  # the token was used
    found += scan_cluster(k8s, secrets)
    found += scan_tree(box.root, secrets)
    found += scan_new_shared_files(before, secrets)
    assert_clean(found)
