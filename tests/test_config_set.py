"""--set and --set-string as Helm reads them, checked against the real Helm 3.17 and 4.1 on a
tiny chart that prints its .Values; the types values get in the objects (checked against the
strict Kubernetes schemas); errors that never show a value that could be secret; and the
names checked at render time instead of at apply time."""
import json
import os
import subprocess

import pytest
import yaml

from conftest import helm_path, injected, plugin_source, post_render
from schemas import object_problems

# Hundreds of cases: valgrind checks a sample of each table (conftest.py).
pytestmark = pytest.mark.valgrind_sample


MANIFESTS = """\
---
# Source: demo/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: demo-web
  namespace: prod
  labels:
    app.kubernetes.io/instance: demo
spec:
  ports: [{port: 80}]
"""

CONFIG = """\
---
# Source: demo/templates/chartreuse.yaml
apiVersion: chartreuse.wiremind.io/v1
kind: ChartreuseConfig
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

INPUT = MANIFESTS + CONFIG

# A password-like value: the messages must never show it, nor a piece of it.
SECRET = "Hunter2-Secret"


def ok(result):
    assert result.rc == 0, result.err.decode()
    return result


def failed(result, *fragments, hidden=()):
    """A failure: non-zero, nothing on stdout, one line on stderr that has every fragment
    and none of the hidden texts."""
    assert result.rc != 0
    assert result.out == b"", "the post-renderer must print nothing on failure"
    assert len(result.err_lines) == 1, result.err_lines
    line = result.err_lines[0]
    for f in fragments:
        assert f in line, (f, line)
    for h in hidden:
        assert h not in line, (h, line)
    return line


def job(result):
    return injected(result)["Job"][0]


def pod(result):
    return job(result)["spec"]["template"]["spec"]


def config_yaml(result):
    return yaml.safe_load(injected(result)["ConfigMap"][0]["data"]["config.yaml"])


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


# The extra options an error must not depend on: none, the release and namespace given, a
# config file (with a setting of its own) under the --set.
@pytest.fixture(params=["alone", "release-namespace", "config-file"])
def others(request, tmp_path):
    if request.param == "alone":
        return []
    if request.param == "release-namespace":
        return ["--release", "demo", "--namespace", "prod"]
    path = tmp_path / "extra.yaml"
    path.write_text("stopPodsTimeout: 1200\npodAnnotations: {team: billing}\n")
    return ["--config", str(path)]


# --- the oracle: the real Helm's --set on a chart that prints .Values --------------------------

@pytest.fixture(scope="module")
def tiny_chart(tmp_path_factory):
    chart = tmp_path_factory.mktemp("tiny") / "tiny"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: tiny\nversion: 0.1.0\n")
    (chart / "templates" / "values.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tiny\n"
        "data:\n  values: {{ toJson .Values | quote }}\n")
    return chart


def helm_template(major, chart, args, release="r", namespace=None):
    cmd = [helm_path(major), "template", release, str(chart), *args]
    if namespace:
        cmd += ["--namespace", namespace]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def helm_values(major, chart, args):
    p = helm_template(major, chart, args)
    assert p.returncode == 0, p.stderr
    return json.loads(yaml.safe_load(p.stdout)["data"]["values"])


# Each case sets keys under `affinity`, a free-form setting that chartreuse copies into the
# Job as it is: there .Values.affinity and our affinity must be equal.
SAME_AS_HELM = [
    ["--set", "affinity.a=1,affinity.b=true,affinity.c=null,affinity.d=,affinity.e=0,"
              "affinity.f=01,affinity.g=+5,affinity.h=-3"],
    ["--set", "affinity.i=1.5,affinity.j=TRUE,affinity.k=Null,affinity.l=9223372036854775808,"
              "affinity.m=x\\,y,affinity.n=a\\\\b,affinity.o=FaLsE"],
    ["--set", "affinity.o={1,x},affinity.p[1]=2,affinity.q.r=s,affinity.t=-0,affinity.u=1e3,"
              "affinity.v=0x1f,affinity.w=-07,affinity.x=9223372036854775807"],
    ["--set", "affinity.a[0][1]=x"],
    ["--set", "affinity.a[1].b=1,affinity.a[0]=x"],
    ["--set", "affinity.a[0]=x,affinity.a[1].b=1,affinity.a[0].c=2"],
    ["--set", "affinity.a[2].b=1"],
    ["--set", "affinity.a=1", "--set", "affinity.a=null"],
    ["--set", "affinity.a={1,2}", "--set", "affinity.a[3]=3"],
    ["--set", "affinity.a[0]={1,2},affinity.b[0].c={x,y}"],
    ["--set", "affinity.a.b=1,affinity.a=2"],
    ["--set", "affinity.a= 1 ,affinity.b={},affinity.c={ },affinity.d=x},affinity.e=b=c"],
    ["--set", "affinity.a=x\\"],
    ["--set", "affinity.a\\=b=c,affinity.a\\.b=1,affinity.c=1,"],
    ["--set", "affinity.a[0].x=1", "--set", "affinity.a[0].y=3"],
    ["--set", "affinity.a={1},affinity.b=2"],
    ["--set", "affinity.a=\u00e9\\,\u00fc,affinity.\u00df=1"],
    ["--set-string", "affinity.a=1,affinity.b=true,affinity.c=null,affinity.d=,"
                     "affinity.e={1,x},affinity.f[1]=3"],
    ["--set", "affinity.a=1", "--set-string", "affinity.a=2"],
    ["--set-string", "affinity.a=2", "--set", "affinity.a=1,affinity.b=3"],
]


@pytest.mark.helm
@pytest.mark.parametrize("major", [3, 4])
@pytest.mark.parametrize("args", SAME_AS_HELM, ids=lambda a: " ".join(a))
def test_set_reads_and_types_values_as_helm_does(tiny_chart, major, args):
    expected = helm_values(major, tiny_chart, args)["affinity"]
    r = ok(post_render(INPUT, *args))
    assert config_yaml(r)["affinity"] == expected
    assert pod(r)["affinity"] == expected


# Refused by Helm and by chartreuse (with one line of its own).
REFUSED_BY_BOTH = [
    ["--set", "affinity.a"],
    ["--set", "affinity.a,affinity.b=1"],
    ["--set", "affinity.a=1,,affinity.b=2"],
    ["--set", "affinity.a..b=1"],
    ["--set", "affinity.a[x]=1"],
    ["--set", "affinity.a[-1]=1"],
    ["--set", "affinity.a[0]b=1"],
    ["--set", "affinity.a=1,affinity.a.b=2"],
    ["--set", "affinity.a[0]=1,affinity.a.b=2"],
    ["--set", "affinity.a={1,2"],
    ["--set", "affinity.a={1}x"],
    ["--set", "affinity.a=1,affinity.b"],
    ["--set", "affinity.a.b=1", "--set", "affinity.a[0]=2"],
    ["--set", "affinity.a=1", "--set", "affinity.a.b=2"],
    ["--set-string", "affinity.a[0]=1,affinity.a.b=2"],
]


@pytest.mark.helm
@pytest.mark.parametrize("major", [3, 4])
@pytest.mark.parametrize("args", REFUSED_BY_BOTH, ids=lambda a: " ".join(a))
def test_set_refuses_what_helm_refuses(tiny_chart, major, args):
    p = helm_template(major, tiny_chart, args)
    assert p.returncode != 0 and "failed parsing --set" in p.stderr, p.stderr
    failed(post_render(INPUT, *args), "--set")


# Helm takes these silently (it drops an empty key; it pads lists up to index 65536);
# chartreuse refuses them, each with its reason.
REFUSED_HERE_ONLY = [
    (["--set", "=1"], "no key before its '='"),
    (["--set", ".a=1"], "a part of the key is empty"),
    (["--set", "affinity.a[1001]=x"], "list index 1001 is too large (at most 1000)"),
    (["--set", ""], "found no '='"),
]


@pytest.mark.helm
@pytest.mark.parametrize("major", [3, 4])
@pytest.mark.parametrize("args,why", REFUSED_HERE_ONLY, ids=lambda a: str(a))
def test_set_refuses_what_helm_drops_silently(tiny_chart, major, args, why):
    assert helm_template(major, tiny_chart, args).returncode == 0
    failed(post_render(INPUT, *args), why)


# --- commas, and the types the objects need -------------------------------------------------

def test_commas_separate_assignments():
    """The issue's case: one env var named "FOO,env[0].value=bar" was rendered."""
    r = ok(post_render(INPUT, "--set", "env[0].name=FOO,env[0].value=bar"))
    main = pod(r)["containers"][0]
    assert env_of(main)["FOO"] == {"name": "FOO", "value": "bar"}
    assert not [n for n in env_of(main) if "," in n]


def test_an_escaped_comma_stays_in_the_value():
    r = ok(post_render(INPUT, "--set", "env[0].name=LIST,env[0].value=a\\,b\\\\c"))
    assert env_of(pod(r)["containers"][0])["LIST"]["value"] == "a,b\\c"


def test_free_form_values_get_the_types_kubernetes_wants():
    """tolerationSeconds must be an integer (Helm's typing); a toleration's value, an env
    var's value, labels and annotations must be strings whatever they look like."""
    r = ok(post_render(
        INPUT, "--set",
        "tolerations[0].key=dedicated,tolerations[0].operator=Equal,tolerations[0].value=true,"
        "tolerations[0].effect=NoSchedule,tolerations[0].tolerationSeconds=30,"
        "env[0].name=PORT,env[0].value=8080,podLabels.version=1,podAnnotations.scrape=true,"
        "nodeSelector.gpu=false,resources.limits.cpu=1,resources.limits.memory=256Mi,"
        "volumes[0].name=1,volumes[0].emptyDir.sizeLimit=1Gi,"
        "volumeMounts[0].name=1,volumeMounts[0].mountPath=/x,volumeMounts[0].readOnly=true"))
    spec = pod(r)
    assert spec["tolerations"] == [{"key": "dedicated", "operator": "Equal", "value": "true",
                                    "effect": "NoSchedule", "tolerationSeconds": 30}]
    main = spec["containers"][0]
    assert env_of(main)["PORT"]["value"] == "8080"
    assert main["resources"] == {"limits": {"cpu": 1, "memory": "256Mi"}}
    assert {"name": "1", "mountPath": "/x", "readOnly": True} in main["volumeMounts"]
    assert {"name": "1", "emptyDir": {"sizeLimit": "1Gi"}} in spec["volumes"]
    assert spec["nodeSelector"] == {"gpu": "false"}
    tmeta = job(r)["spec"]["template"]["metadata"]
    assert tmeta["labels"]["version"] == "1"
    assert tmeta["annotations"]["scrape"] == "true"
    assert object_problems(job(r)) == []


def test_set_string_keeps_free_form_values_strings():
    r = ok(post_render(INPUT, "--set-string", "affinity.weight=10,affinity.on=true",
                       "--set", "affinity.other=10"))
    assert pod(r)["affinity"] == {"weight": "10", "on": "true", "other": 10}


def test_a_file_s_numbers_and_booleans_become_strings_where_kubernetes_wants_strings(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("podLabels: {version: 1}\npodAnnotations: {scrape: true, n: 1.5}\n"
                    "env: [{name: WORKERS, value: 4}]\n"
                    "tolerations: [{key: k, operator: Equal, value: true, "
                    "tolerationSeconds: 30}]\n")
    r = ok(post_render(INPUT, "--config", str(path)))
    spec = pod(r)
    assert env_of(spec["containers"][0])["WORKERS"]["value"] == "4"
    assert spec["tolerations"] == [{"key": "k", "operator": "Equal", "value": "true",
                                    "tolerationSeconds": 30}]
    tmeta = job(r)["spec"]["template"]["metadata"]
    assert tmeta["labels"]["version"] == "1"
    assert tmeta["annotations"] == {"scrape": "true", "n": "1.5"}
    assert object_problems(job(r)) == []


def test_schema_keys_take_their_schema_type():
    r = ok(post_render(INPUT, "--set", "image.tag=10,upgradeJobWeight=5,stopPods=yes",
                       "--set-string", "stopPodsTimeout=1200,restorePods=false"))
    cfg = config_yaml(r)
    assert cfg["image"]["tag"] == "10"
    assert cfg["stopPods"] is True and cfg["restorePods"] is False
    assert cfg["stopPodsTimeout"] == 1200
    assert pod(r)["containers"][0]["image"] == "registry.example.com/demo:10"
    assert job(r)["metadata"]["annotations"]["helm.sh/hook-weight"] == "5"


def test_null_unsets_a_setting_so_its_default_applies():
    r = ok(post_render(INPUT, "--set", "image.tag=null,waitTimeout=null"))
    assert pod(r)["containers"][0]["image"] == "registry.example.com/demo"
    assert "600" in pod(r)["initContainers"][-1]["args"]
    # --set-string keeps "null" a string.
    r = ok(post_render(INPUT, "--set-string", "image.tag=null"))
    assert pod(r)["containers"][0]["image"] == "registry.example.com/demo:null"


def test_additional_parameters_as_a_list_and_empty():
    r = ok(post_render(INPUT, "--set", "databases[0].additionalParameters={-x,env=staging}"))
    assert config_yaml(r)["databases"][0]["additionalParameters"] == ["-x", "env=staging"]
    r = ok(post_render(INPUT, "--set", "databases[0].additionalParameters="))
    assert config_yaml(r)["databases"][0]["additionalParameters"] == ""


@pytest.mark.parametrize("option", ["--set", "--set-string"])
@pytest.mark.parametrize("key", ["image.tag", "image.repository", "databases[0].host",
                                 "metadata.name", "release", "stopPods", "waitTimeout",
                                 "deploymentMethod", "databases[0].password"])
def test_an_empty_value_is_refused_for_a_key_that_cannot_be_empty(others, option, key):
    line = failed(post_render(INPUT, *others, option, f"{key}="),
                  f"{option} {key}: the value is empty", f"{key}=null")
    assert line.startswith("chartreuse: error: ")


# Every way an assignment is refused, each with its own message naming the key.
SET_ERRORS = [
    ("podLabels" + ".a" * 32 + "=x", "the key has more than 32 parts"),
    ("affinity.a[x]=1", "[x] is not a list index (a number from 0 to 1000)"),
    ("affinity.a[99999999999999999999]=1", "list index 99999999999999999999 is too large"),
    ("affinity.a[1=1", "a '[' without its ']'"),
    ("affinity..a=1", "a part of the key is empty"),
    ("affinity.a[0]b=1", "unexpected text after [0]"),
    ("image[0]=x", "image is not a list"),
    ("databases[0][1].host=x", "databases[0] is not a list"),
    ("env[0].value={a,b}", "Kubernetes wants a string here"),
    ("affinity.a=1,affinity.a.b=2", "--set affinity.a.b: affinity.a is a scalar, not a mapping"),
    ("affinity.a.b=1,affinity.a[0]=2", "affinity.a is a mapping, not a list"),
    ("=x", "an assignment has no key before its '='"),
    ("stopPods=true,=x", "an assignment has no key before its '='"),
    ("databases[0].additionalParameters[0].x=1",
     "databases[0].additionalParameters[0] holds a single value"),
    ("tolerations=x", "tolerations is not a single value"),
    ("podLabels={a}", "podLabels is not a single value"),
]


@pytest.mark.parametrize("option", ["--set", "--set-string"])
@pytest.mark.parametrize("assignment,why", SET_ERRORS, ids=lambda a: str(a)[:40])
def test_every_refused_assignment_says_why(others, option, assignment, why):
    line = failed(post_render(INPUT, *others, option, assignment),
                  why.replace("--set ", option + " "))
    assert line.startswith(f"chartreuse: error: {option}")


@pytest.mark.parametrize("option", ["--set", "--set-string"])
def test_set_options_need_a_utf8_value(others, option):
    failed(post_render(INPUT, *others, option), f"{option} needs a value")
    failed(post_render(INPUT, *others, f"{option}=podLabels.".encode() + b"\x8e=x"),
           "not UTF-8")


# --- errors never show a value that could be secret ---------------------------------------

SECRET_CASES = [
    (f"databases[0].password.x={SECRET}", "databases[0].password holds a single value"),
    (f"databases[0].pasword={SECRET}", "unknown key pasword"),
    (f"databases[0].url.x=postgresql://u:{SECRET}@h/db", "databases[0].url holds a single"),
    (f"databases[0].password[0]={SECRET}", "databases[0].password holds a single value"),
    (f"databases[0].password={{{SECRET},x}}", "password takes one value, not a {...} list"),
    (f"databases[0].password={{{SECRET}", "a {...} list must end with '}'"),
    (f"databases[0].passwordSecret={SECRET}", "passwordSecret is not a single value"),
    (f"databases[0]={SECRET}", "name a key of databases[0]"),
    (f"databases={SECRET}", "databases is not a single value"),
    (f"eslembic.url.x=http://u:{SECRET}@es:9200", "eslembic.url holds a single value"),
    (f"pasword={SECRET}", "unknown key pasword"),
    (f"databases.password={SECRET}", "databases is a list: give an index"),
    (f"env.x={SECRET}", "env is a list: give an index"),
    (f"podAnnotations[0]={SECRET}", "podAnnotations is a mapping, not a list"),
]


@pytest.mark.parametrize("option", ["--set", "--set-string"])
@pytest.mark.parametrize("assignment,why", SECRET_CASES, ids=lambda a: str(a)[:40])
def test_a_refused_assignment_never_shows_its_value(others, option, assignment, why):
    failed(post_render(INPUT, *others, option, assignment), why, hidden=[SECRET])


@pytest.mark.parametrize("option", ["--set", "--set-string"])
def test_a_value_cut_at_a_comma_is_not_shown(others, option):
    """An unescaped comma in a password leaves a piece that has no '=': neither piece is
    shown, and the message says how to write the comma."""
    first, second = "Hunter2-first", "Secret9-second"
    line = failed(post_render(INPUT, *others, option,
                              f"databases[0].password={first},{second}"),
                  "after the assignment to databases[0].password", "'\\,'",
                  hidden=[first, second])
    assert "KEY=VALUE" in line
    failed(post_render(INPUT, *others, option, f"{first}"), "found no '='", hidden=[first])


@pytest.mark.parametrize("assignment,why", [
    (f"env[0].name=X,env[0].value.x={SECRET}", "env[0].value: must be a string, not a mapping"),
    (f"podAnnotations.note.x={SECRET}", "podAnnotations.note: the value must be a string"),
    (f"metadata.annotations.note[0]={SECRET}", "metadata.annotations.note: the value must be"),
])
def test_a_secret_in_a_free_form_value_of_the_wrong_shape_is_not_shown(others, assignment, why):
    failed(post_render(INPUT, *others, "--set", assignment), why, hidden=[SECRET])


def test_a_closed_type_shows_the_refused_value(others):
    """Booleans, integers and enums can't hold a secret: their refused value is shown."""
    failed(post_render(INPUT, *others, "--set", "stopPods=maybe"),
           "--set stopPods=maybe: stopPods expects true or false")
    failed(post_render(INPUT, *others, "--set", "databases[0].port=x"),
           "--set databases[0].port=x: port expects an integer")
    failed(post_render(INPUT, *others, "--set-string", "deploymentMethod=flux"),
           "--set-string deploymentMethod=flux: deploymentMethod expects one of: helm, argocd")


def test_a_dialect_error_does_not_show_the_dialect(others):
    failed(post_render(INPUT, *others, "--set", f"databases[0].dialect={SECRET}"),
           "dialect: only postgresql", hidden=[SECRET])


# --- names, checked before Helm applies anything ----------------------------------------------

RELEASES = ["demo", "a.b", "1abc", "r" * 53, "Bad_Name", "r" * 54, "x-", "a_b", "a..b", "UP"]


@pytest.mark.helm
@pytest.mark.parametrize("release", RELEASES)
def test_release_names_follow_helms_rule(tiny_chart, release):
    """Helm 3 and 4 take a DNS-1123 subdomain of at most 53 characters (dots too) and
    refuse anything else; so does chartreuse, with its own message."""
    helm_ok = {helm_template(m, tiny_chart, [], release=release).returncode == 0 for m in (3, 4)}
    assert len(helm_ok) == 1
    r = post_render(INPUT, "--release", release)
    if helm_ok == {True}:
        ok(r)
        for d in (d for docs in injected(r).values() for d in docs):
            assert d["metadata"]["labels"]["app.kubernetes.io/instance"] == release
    else:
        failed(r, f'the release name "{release}" is not a valid name', "at most 53")


def test_generated_names_are_valid_for_the_longest_release_and_name():
    """53 characters of release (Helm's limit) and 63 of metadata.name: every object and
    Job name fits in 63 characters and is a DNS-1123 subdomain; the Jobs keep their
    distinctive ends and differ from each other."""
    for release, name in [("r" * 53, "chartreuse"), ("r" * 51 + ".a", "m" * 63),
                          ("a-" * 26 + "b", "c" * 40), ("demo", "m" * 63),
                          # where the cut falls: after a '.' for the Jobs, for the others
                          ("a" * 34 + "." + "b" * 18, "chartreuse"),
                          ("a" * 42 + "." + "b" * 10, "chartreuse")]:
        r = ok(post_render(INPUT, "--release", release, "--set", f"metadata.name={name}",
                           "--set", "upgradeBeforeDeployment=true"))
        objs = injected(r)
        names = [d["metadata"]["name"] for docs in objs.values() for d in docs]
        for n in names:
            assert len(n) <= 63, n
            assert all(part and part[0].isalnum() and part[-1].isalnum()
                       and all(c.islower() or c.isdigit() or c == "-" for c in part)
                       for part in n.split(".")), n
        jobs = sorted(j["metadata"]["name"] for j in objs["Job"])
        assert len(set(jobs)) == 3
        for j in objs["Job"]:
            assert object_problems(j) == []


@pytest.mark.parametrize("args,fragments", [
    (["--namespace", "Bad_NS"], ['the namespace "Bad_NS" is not a valid name', "label"]),
    (["--namespace", "a.b"], ['the namespace "a.b"']),
    (["--namespace", "n" * 64], ["the namespace", "at most 63"]),
    (["--set", "namespace=-x"], ['the namespace "-x"']),
    (["--set", "metadata.name=Up"], ['metadata.name "Up" is not a valid name']),
    (["--set", "metadata.name=a_b"], ['metadata.name "a_b"']),
    (["--set", "metadata.name=" + "m" * 64], ["metadata.name", "at most 63"]),
    (["--set", "serviceAccount.create=false,serviceAccount.name=SA_x"],
     ['serviceAccount.name "SA_x"', "at most 253"]),
    (["--set", "priorityClassName=High"], ['priorityClassName "High"']),
    (["--set", "image.pullSecret=Reg_Cred"], ['image.pullSecret "Reg_Cred"']),
    (["--set", "chartreuseImage.pullSecret=a..b"], ['chartreuseImage.pullSecret "a..b"']),
    (["--set", "databases[0].passwordSecret.name=Bad_Secret"],
     ['databases[0].passwordSecret.name "Bad_Secret"']),
    (["--set", "databases[0].passwordSecret.key=bad key"],
     ['databases[0].passwordSecret.key "bad key" is not a valid Secret key']),
    (["--set", "databases[0].passwordSecret=null,databases[0].host=null,"
               "databases[0].user=null,databases[0].database=null,"
               "databases[0].urlSecret.name=db_url,databases[0].urlSecret.key=url"],
     ['databases[0].urlSecret.name "db_url"']),
    (["--set", "eslembic.urlSecret.name=es,eslembic.urlSecret.key=u/rl"],
     ['eslembic.urlSecret.key "u/rl"']),
    (["--set", "podLabels.bad\\ key=x"], ['podLabels: the key "bad key" is not a valid label key']),
    (["--set", "podLabels.team=-billing"], ['podLabels.team: the label value "-billing"']),
    (["--set", "podLabels.team=" + "x" * 64], ["podLabels.team: the label value"]),
    (["--set", "podLabels.team.x=y"],
     ["podLabels.team: the value must be a string, not a mapping"]),
    (["--set", "metadata.labels.a/b/c=x"], ['metadata.labels: the key "a/b/c"']),
    (["--set", "metadata.labels.Bad_Prefix/x=y"], ['the key "Bad_Prefix/x"']),
    (["--set", "podAnnotations.x\\ y=1"],
     ['podAnnotations: the key "x y" is not a valid annotation']),
    (["--set", "metadata.annotations." + "a" * 64 + "=1"], ["metadata.annotations: the key"]),
    (["--set", "env[0].name=A=B,env[0].value=1"], ['env[0].name "A=B" is not a valid variable']),
    (["--set", "env[0].name=A\\,B,env[1].value=1"], ["env[1]: name is required"]),
    (["--set", "env[1].name=B"], ["env[0]: expected a mapping"]),
])
def test_a_name_the_api_server_would_refuse_is_refused_now(others, args, fragments):
    failed(post_render(INPUT, *others, *args), *fragments)


def test_names_from_a_config_file_are_checked_too(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("metadata: {name: Billing}\n")
    failed(post_render(INPUT, "--config", str(path)), 'metadata.name "Billing"')
    path.write_text("podLabels: {team: 'a b'}\n")
    failed(post_render(INPUT, "--config", str(path)), 'podLabels.team: the label value "a b"')
    path.write_text("env: [{value: x}]\n")
    failed(post_render(INPUT, "--config", str(path)), "env[0]: name is required")


def test_label_keys_values_and_env_names_kubernetes_takes_are_kept():
    r = ok(post_render(INPUT, "--set",
                       "podLabels.example\\.com/team=billing_1.x,podLabels.empty=,"
                       "metadata.labels.tier=Back-End,podAnnotations.example\\.com/x=a b,"
                       "env[0].name=my.var-1,env[0].value=,metadata.name=billing.reports"))
    j = job(r)
    assert j["spec"]["template"]["metadata"]["labels"]["example.com/team"] == "billing_1.x"
    assert j["spec"]["template"]["metadata"]["labels"]["empty"] == ""
    assert j["metadata"]["labels"]["tier"] == "Back-End"
    assert j["metadata"]["name"] == "demo-billing.reports-upgrade"
    assert env_of(pod(r)["containers"][0])["my.var-1"]["value"] == ""
    assert object_problems(j) == []


# --- the wrappers -----------------------------------------------------------------------------

@pytest.mark.helm
@pytest.mark.parametrize("major", [3, 4])
def test_wrapper_passes_set_and_set_string(tmp_path, major):
    env = dict(os.environ)
    for var in ("HELM_DATA_HOME", "HELM_CONFIG_HOME", "HELM_CACHE_HOME"):
        (tmp_path / var).mkdir()
        env[var] = str(tmp_path / var)
    env.pop("HELM_PLUGINS", None)
    env.pop("HELM_BIN", None)
    helm = helm_path(major)
    subprocess.run([helm, "plugin", "install", str(plugin_source())], env=env, check=True,
                   capture_output=True, timeout=300)
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: demo\nversion: 0.1.0\n")
    (chart / "templates" / "all.yaml").write_text(
        (MANIFESTS + CONFIG).replace("  namespace: prod\n", ""))
    p = subprocess.run([helm, "chartreuse", "template", "demo", str(chart), "-n", "prod",
                        "--chartreuse-set", "env[0].name=FOO,env[0].value=bar",
                        "--chartreuse-set-string", "affinity.n=1"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    jobs = [d for d in yaml.safe_load_all(p.stdout) if d and d["kind"] == "Job"]
    spec = jobs[0]["spec"]["template"]["spec"]
    assert env_of(spec["containers"][0])["FOO"]["value"] == "bar"
    assert spec["affinity"] == {"n": "1"}
