#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/) from the test
suite's fixtures, the example chart (rendered by the real Helm 3 when .cache/helm has it)
and the example Alembic project. Re-run it after changing a fixture; the files are
committed, so a fuzz run needs neither Helm nor Python.

    /usr/bin/python3 tests/fuzz/make_corpus.py
"""
import base64
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests"))

import alembic_projects  # noqa: E402
import test_alembic_heads  # noqa: E402
import test_post_render  # noqa: E402

CORPUS = HERE / "corpus"
SCRIPT_SEP = "\n#### next script ####\n"
FILE_SEP = "\n#### next file ####\n"


def put(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data.encode() if isinstance(data, str) else data)


# fuzz_post_render's first byte picks its options (tests/fuzz/fuzz_post_render.c): none (as
# plain Helm 4 runs it), --release --namespace --set (the wrappers), and --release
# --namespace --config --hooks-to (Helm 3's wrapper).
POST_RENDER_OPTIONS = {"bare": b"\x00", "wrapper": b"\x0b", "hooks": b"\x17"}


def put_stream(name, text):
    for variant, byte in POST_RENDER_OPTIONS.items():
        put("post_render", f"{name}-{variant}.yaml", byte + text.encode())


def helm_template(*values):
    helm = REPO / ".cache" / "helm" / "v3" / "helm"
    if not helm.exists():
        return None
    args = [str(helm), "template", "demo", str(REPO / "examples/chart/demo"), "-n", "demo"]
    for v in values:
        args += ["-f", str(REPO / "examples/chart/demo" / v)]
    return subprocess.run(args, check=True, capture_output=True).stdout.decode()


def config_docs(stream):
    return ["apiVersion" + d.split("\napiVersion", 1)[1] for d in stream.split("\n---")
            if "kind: ChartreuseConfig" in d]


def post_render_and_config():
    put_stream("chart_output", test_post_render.CHART_OUTPUT)
    put_stream("plain_input", test_post_render.PLAIN_INPUT)
    put_stream("edge_cases",
        "# leading comment\n--- !!map\nkind: ConfigMap\nmetadata: {name: a, namespace: x,"
        " labels: {release: r}}\ndata:\n  k: &anchor |\n    --- not a document\n  j: *anchor\n"
        "...\n---\n---\napiVersion: v1\nkind: List\nitems: [{a: 1}, {b: [2, 3]}]\n"
        "--- \"\"\n---\r\nkind: Secret\r\nmetadata:\r\n  name: s\r\n")
    put_stream("two_configs",
               test_post_render.PLAIN_INPUT + test_post_render.CONFIG_DOC +
               test_post_render.CONFIG_DOC.replace("name: chartreuse", "name: second"))
    put_stream("duplicate_keys", test_post_render.PLAIN_INPUT +
               test_post_render.DUPLICATE_KEYS + test_post_render.CONFIG_DOC)
    put_stream("marker_lookalikes", test_post_render.PLAIN_INPUT +
               test_post_render.MARKER_LOOKALIKES + test_post_render.CONFIG_DOC)
    put_stream("helm4", test_post_render.HELM4_DOCUMENT + test_post_render.CONFIG_DOC)
    for spelling, kind in test_post_render.KIND_SPELLINGS.items():
        if kind:
            put("post_render", f"kind_{spelling}.yaml",
                b"\x0b" + ("---\n" + kind + test_post_render.SPELLED_BODY).encode())
    for values, name in ((), "demo"), (("values-before.yaml",), "demo_before"), \
            (("values-multi.yaml",), "demo_multi"):
        out = helm_template(*values)
        if out is None:
            continue
        put_stream(name, out)
        for i, doc in enumerate(config_docs(out)):
            put("config", f"{name}_{i}.yaml", doc)
    put("config", "chart_config.yaml", test_post_render.CONFIG_DOC.split("\n", 2)[2])
    put("config", "everything.yaml", """\
apiVersion: chartreuse.wiremind.io/v1
kind: ChartreuseConfig
metadata: {name: m, labels: {team: a}, annotations: {note: "x: y"}}
release: rel
namespace: ns
deploymentMethod: argocd
argocd: {hook: PreSync, syncWave: -3}
upgradeBeforeDeployment: true
stopPods: yes
restorePods: off
upgradeJobWeight: "-2"
stopPodsTimeout: 100
waitTimeout: 5
ttlSecondsAfterFinished: 0
image: {repository: reg/app, tag: "1.0", pullPolicy: Always, pullSecret: regcred}
chartreuseImage: {repository: reg/cr, tag: "0.1.0", delivery: baked}
databases:
  - name: main
    host: db
    port: 6543
    user: "u:ser"
    password: "p@ss'#: \\"word\\n"
    database: app
    alembicSection: second
    additionalParameters: "-x env=staging -x 'quoted arg'"
    patroni: true
    patroniWaitTimeout: 30
  - name: other
    urlSecret: {name: s, key: url}
    allowMigrationFromEmptyDatabase: false
    additionalParameters: [-x, a=b]
eslembic: {url: "http://u:pw@es:9200", cleanIndex: true, migrate: true}
rbac: {create: true}
serviceAccount: {create: false, name: existing}
priorityClassName: high
resources: {limits: {cpu: 1}}
nodeSelector: {disk: ssd}
tolerations: [{key: k, operator: Exists}]
affinity: {}
podAnnotations: {a: b}
podLabels: {c: d}
env: [{name: E, value: v}]
envFrom: [{secretRef: {name: s}}]
volumes: [{name: v, emptyDir: {}}]
volumeMounts: [{name: v, mountPath: /v}]
""")
    put("config", "with_sets.yaml",
        "image: {repository: r}\nrelease: a\nnamespace: b\n\0databases[0].host=h\0"
        "databases[0].user=u\0databases[0].database=d\0databases[0].password=x\\.y\0"
        "podLabels.a\\.b=c\0tolerations[1].key=k\0stopPods=false")


def alembic():
    ex = REPO / "examples" / "alembic"
    put("alembic_ini", "example.ini", (ex / "alembic.ini").read_text())
    put("alembic_script", "example",
        SCRIPT_SEP.join(p.read_text() for p in sorted((ex / "versions").glob("*.py"))))
    put("alembic_ini", "interpolation.ini",
        "[DEFAULT]\nbase = %(here)s\n[alembic]\nscript_location = %(base)s/migrations\n"
        "version_locations = %(here)s/a %(here)s/b,  %(here)s/c\nversion_table = v_%%x\n"
        "version_table_schema = audit\nrecursive_version_locations = true\n"
        "sqlalchemy.url = postgresql://u:p%%40@h/d\n  continued\n\n  after blank\n"
        "; comment\n[second]\nscript_location: migrations\nsourceless = true\n")
    put("alembic_ini", "separators.ini",
        "[alembic]\r\nscript_location = migrations\r\npath_separator = newline\r\n"
        "version_locations =\r\n  %(here)s/one\r\n  pkg:resource\r\n[post]\r\n[alembic2]\r\n")
    put("alembic_ini", "package.ini",
        "[alembic]\nscript_location = app:../migrations\nprepend_sys_path = nowhere:.\n"
        "path_separator = os\nversion_locations = app:../migrations/versions app:v2:v3\n")
    for name, build in list(alembic_projects.PROJECTS.items()) + \
            list(alembic_projects.SPECIAL.items()) + \
            list(alembic_projects.UNCERTAIN_PACKAGES.items()):
        with tempfile.TemporaryDirectory() as tmp:
            project = build(tmp)
            root = Path(tmp)
            ini = (root / project.ini).read_text()
            put("alembic_ini", f"{name}.ini", ini.replace(tmp, "/project"))
            scripts = sorted(project.files.values())
            put("alembic_script", name, SCRIPT_SEP.join(p.read_text() for p in scripts))
    # Code that runs at import, and f-strings as Python 3.12 reads them.
    head = "revision = 'orig01'\ndown_revision = None\n"
    for table in ("REBINDING", "REBINDING_312", "HARMLESS", "HARMLESS_312"):
        snippets = getattr(test_alembic_heads, table)
        put("alembic_script", f"import_time_{table.lower()}",
            SCRIPT_SEP.join(head + code for code in snippets.values()))


def kubeconfig():
    ca = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    token = """\
apiVersion: v1
kind: Config
current-context: sim
clusters:
- name: sim
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority-data: %s
contexts:
- name: sim
  context: {cluster: sim, user: admin, namespace: apps}
- name: fuzz
  context: {cluster: sim, user: exec}
users:
- name: admin
  user: {token: s3cr3t-token}
- name: exec
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ./bin/get-token
      args: [--cluster, sim]
      env: [{name: A, value: b}, {name: C}]
      provideClusterInfo: true
      installHint: install it
""" % ca.decode()
    put("kubeconfig", "token_and_exec.yaml", token)
    put("kubeconfig", "cert_files.yaml", """\
current-context: c
contexts: [{name: c, context: {cluster: k, user: u}}]
clusters: [{name: k, cluster: {server: "https://[::1]:8443", certificate-authority: ca.crt,
  insecure-skip-tls-verify: true, proxy-url: "http://proxy:3128", tls-server-name: x}}]
users: [{name: u, user: {client-certificate: /etc/c.crt, client-key: k.key,
  tokenFile: token, username: a, password: b}}]
""")
    put("kubeconfig", "merged.yaml", "current-context: first\n" + FILE_SEP + token.replace(
        "current-context: sim", "current-context: other") + FILE_SEP + """\
contexts: [{name: first, context: {cluster: sim, user: admin}}]
users: [{name: admin, user: {client-certificate-data: %s, client-key-data: %s}}]
""" % (ca.decode(), ca.decode()))
    put("kubeconfig", "auth_provider.yaml",
        "current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
        "clusters: [{name: k, cluster: {server: https://k}}]\n"
        "users: [{name: u, user: {auth-provider: {name: gcp}}}]\n")
    # The forms other tools write: kubectl's JSON (every value double-quoted), quoted
    # scalars, CRLF line ends (a quoted scalar once ran to the end of the file).
    as_yaml = yaml.safe_load(token)
    put("kubeconfig", "kubectl_json.json", json.dumps(as_yaml, indent=4) + "\n")
    put("kubeconfig", "quoted_crlf.yaml", (token.replace("current-context: sim",
                                                         "current-context: 'sim'")
                                           .replace("token: s3cr3t-token",
                                                    'token: "s3cr3t-token"')
                                           .replace("\n", "\r\n")))


def k8s_json():
    answers = {
        "eds_list": {"apiVersion": "wiremind.io/v1", "kind": "ExpectedDeploymentScaleList",
                     "items": [{"metadata": {"name": "web", "labels": {"release": "demo"}},
                                "spec": {"deploymentName": "demo-web", "expectedScale": 3,
                                         "priority": 10},
                                "status": {"selector": "app=web,tier in (a, b),!canary"}},
                               {"spec": {"deploymentName": "demo-worker",
                                         "expectedScale": "2"}},
                               {"spec": {"deploymentName": "demo-web"}}]},
        "job_failed": {"kind": "Job", "spec": {"backoffLimit": 0, "completions": 1},
                       "status": {"failed": 1, "conditions": [
                           {"type": "FailureTarget", "status": "True",
                            "reason": "BackoffLimitExceeded", "message": "too many"},
                           {"type": "Failed", "status": "True"}]}},
        "job_running": {"kind": "Job", "spec": {"suspend": False},
                        "status": {"active": 1, "startTime": "2024-05-01T10:00:00Z"}},
        "job_complete": {"status": {"succeeded": 1, "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True"},
            {"type": "Complete", "status": "True"}]}},
        "status_error": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                         "message": "deployments.apps \"x\" is forbidden: \u00e9\n",
                         "reason": "Forbidden", "code": 403},
        "exec_credential": {"apiVersion": "client.authentication.k8s.io/v1",
                            "kind": "ExecCredential",
                            "status": {"token": "t0ken-value",
                                       "expirationTimestamp": "2030-01-02T03:04:05.5+02:00"}},
        "exec_credential_cert": {"apiVersion": "client.authentication.k8s.io/v1",
                                 "kind": "ExecCredential",
                                 "status": {"clientCertificateData": "-----BEGIN-----",
                                            "clientKeyData": "-----KEY-----"}},
        "hpa_list": {"items": [{"metadata": {"name": "web", "annotations": {
            "chartreuse.wiremind.io/hpa-behavior-before": "{\"scaleUp\": null}"}},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "demo-web"},
                     "behavior": {"scaleUp": {"selectPolicy": "Disabled"}}}}]},
        "scalars": [None, True, False, 0, -1.5e3, "", "\u0000\t\"\\", "yes", "01",
                    {"": {"a": [[], {}]}}],
    }
    for name, value in answers.items():
        put("k8s_json", f"{name}.json", json.dumps(value, indent=1))
    put("k8s_json", "watch_event.json",
        '{"type":"MODIFIED","object":{"kind":"Pod","metadata":{"name":"p",'
        '"labels":{"app":"web"}},"status":{"phase":"Failed"}}}\n')


def log_mask():
    put("log_mask", "url.txt",
        "cannot connect to postgresql://app:hunter2@db:5432/app (user app)\0hunter2")
    put("log_mask", "secrets.txt",
        "token s3cr3t-token and multi\nline with pa%40ss\0s3cr3t-token\0pa%40ss\0line with")
    put("log_mask", "urls.txt",
        "http://u@h/x?a=b@c https://a:b:c@d@e/f ://:@ x://user:pw#frag@h\0pw#frag")


if __name__ == "__main__":
    post_render_and_config()
    alembic()
    kubeconfig()
    k8s_json()
    log_mask()
