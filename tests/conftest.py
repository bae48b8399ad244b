"""Shared fixtures: the chartreuse binary under test (optionally under valgrind), the real
Helm binaries, and helpers to run the post-renderer and parse what it prints."""
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
BIN = os.environ.get("CHARTREUSE_BIN", str(REPO / "bin" / "chartreuse"))
UNIT = os.environ.get("CHARTREUSE_UNIT", str(REPO / "build" / "release" / "unit-tests"))
WRAPPER = shlex.split(os.environ.get("CHARTREUSE_WRAPPER", ""))
# How much slower chartreuse runs in this pass (valgrind, the sanitizers): wall-clock upper
# bounds in the tests are multiplied by it.
SLOWDOWN = float(os.environ.get("CHARTREUSE_SLOWDOWN") or (10 if WRAPPER else 1))
HELM_DIR = REPO / ".cache" / "helm"
EXAMPLE_CHART = REPO / "examples" / "chart" / "demo"
# The default chartreuse image (src/image.h), as the Job names it.
IMAGE_REPOSITORY = re.search(r'#define CR_IMAGE_REPOSITORY "([^"]+)"',
                             (REPO / "src" / "image.h").read_text()).group(1)
# Every `helm plugin install` of the suite installs the binary under test, never a release
# download (install-binary.sh; tests/test_install.py tests the download).
os.environ["CHARTREUSE_BUILD"] = "1"


def pytest_configure(config):
    config.addinivalue_line("markers", "helm: runs the real Helm binaries")
    config.addinivalue_line("markers", "rbac_refusals: the test makes requests the Role "
                            "refuses on purpose (the k8s fixture checks there are none)")
    config.addinivalue_line("markers", "timing: aims signals and faults at moments timed for "
                            "an unwrapped binary; skipped under valgrind")
    config.addinivalue_line("markers", "e2e: real Helm against the simulated cluster (make e2e)")
    config.addinivalue_line("markers", "valgrind_sample: a table of cases of which the valgrind "
                            "pass runs one in VALGRIND_SAMPLE (the other passes run them all)")


# Under valgrind each run of chartreuse costs a second or more: of a table of cases that
# the regular and sanitizer passes run whole, valgrind checks every VALGRIND_SAMPLE-th.
VALGRIND_SAMPLE = 4


def pytest_collection_modifyitems(config, items):
    if not WRAPPER:
        return
    seen = {}
    kept, dropped = [], []
    for item in items:
        if item.get_closest_marker("valgrind_sample") and hasattr(item, "callspec"):
            n = seen.get(item.originalname, 0)
            seen[item.originalname] = n + 1
            if n % VALGRIND_SAMPLE:
                dropped.append(item)
                continue
        kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


# What AddressSanitizer, LeakSanitizer, UndefinedBehaviorSanitizer and valgrind print when
# they find something. A test that expects chartreuse to fail would otherwise take a
# sanitizer's exit status for the failure it expected.
CHECKER_REPORT = re.compile(
    rb"ERROR: (Address|Leak)Sanitizer|UndefinedBehaviorSanitizer|: runtime error: |^==\d+== ",
    re.M)


def assert_no_checker_report(stderr, what="chartreuse"):
    m = CHECKER_REPORT.search(stderr or b"")
    assert not m, f"{what}: a memory checker reported an error:\n" + \
        stderr[max(0, m.start() - 200):m.start() + 3000].decode(errors="replace")


class Result:
    def __init__(self, proc):
        assert_no_checker_report(proc.stderr)
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    @property
    def text(self):
        return self.out.decode()

    @property
    def err_lines(self):
        return [l for l in self.err.decode(errors="replace").splitlines() if l.strip()]

    def docs(self):
        return [d for d in yaml.safe_load_all(self.out) if d is not None]


def run(args, stdin=b"", env=None, timeout=60, wrapper=True, cwd=None):
    if isinstance(stdin, str):
        stdin = stdin.encode()
    full_env = dict(os.environ)
    full_env.update(env or {})
    cmd = (WRAPPER if wrapper else []) + [BIN] + list(args)
    proc = subprocess.run(cmd, input=stdin, capture_output=True, env=full_env,
                          timeout=timeout, cwd=cwd)
    return Result(proc)


def migration_lock_key(version_table="alembic_version", schema=""):
    """The advisory lock chartreuse takes for a version table (lock_key_of in
    src/migrate.c: FNV-1a of "chartreuse" shifted left 31, xor FNV-1a of "schema.table")."""
    def fnv1a(text):
        h = 2166136261
        for b in text.encode():
            h = ((h ^ b) * 16777619) & 0xFFFFFFFF
        return h
    return (fnv1a("chartreuse") << 31) ^ fnv1a(f"{schema}.{version_table}")


def post_render(stdin, *args, **kw):
    return run(["post-render", *args], stdin=stdin, **kw)


def injected(result):
    """The documents chartreuse added, by kind (a list per kind)."""
    out = {}
    for d in result.docs():
        labels = (d.get("metadata") or {}).get("labels") or {}
        if labels.get("app.kubernetes.io/name") == "chartreuse":
            out.setdefault(d["kind"], []).append(d)
    return out


def plugin_source():
    """What `helm plugin install` is given: the repository, or a staged plugin that runs
    CHARTREUSE_WRAPPER + CHARTREUSE_BIN (tests/plugin_stage.py)."""
    from plugin_stage import plugin_source as stage
    return stage(REPO, BIN, WRAPPER)


def pytest_unconfigure(config):
    from plugin_stage import cleanup
    cleanup()


def helm_path(major):
    path = HELM_DIR / f"v{major}" / "helm"
    if not path.exists():
        pytest.fail(f"{path} is missing: run scripts/get-helm.sh (make helm)")
    return str(path)


@pytest.fixture(params=[3, 4], ids=["helm3", "helm4"])
def helm_major(request):
    return request.param


@pytest.fixture(scope="session")
def pg():
    """A PostgreSQL 15 server for the whole session (tests/pgserver.py)."""
    from pgserver import PgServer
    server = PgServer()
    yield server
    server.stop()


@pytest.fixture
def k8s(request):
    """A simulated Kubernetes API server (tests/k8s_sim) for one test: HTTPS with a
    throw-away CA, bearer token `k8s.token`, the ExpectedDeploymentScale CRD installed,
    Pods starting/stopping after 0.2 s. `k8s.kubeconfig(path)` writes a kubeconfig."""
    from k8s_sim import K8sSim
    sim = K8sSim().start()
    yield sim
    sim.stop()
    # Every test that talks to the simulator runs inside the Role it loaded: a refusal is
    # a missing permission, unless the test is about refusals.
    if not request.node.get_closest_marker("rbac_refusals"):
        refused = [str(r) for r in sim.request_log if r.denied]
        assert not refused, f"requests outside the Job's Role: {refused}"
