"""chartreuse's native reading of Alembic projects against the real Alembic (/usr/bin/alembic):
heads against `alembic heads` on every test project, "missing" against what
`alembic upgrade heads` really applies (on SQLite, no server needed), and the ini copy
against Python's configparser and Alembic itself.

The C side is reached through two helper tests of the unit binary (tests/unit/
test_alembic.c), driven by environment variables, so that src/ needs no debug command."""
import configparser
import os
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest

import alembic_projects as ap
from conftest import UNIT, WRAPPER

ALEMBIC = "/usr/bin/alembic"


def unit_helper(test, project, **env):
    full = dict(os.environ, CR_ALEMBIC_HEADS_DIR=str(project.path), CR_ALEMBIC_INI=project.ini)
    if project.section:
        full["CR_ALEMBIC_SECTION"] = project.section
    full.update(env)
    proc = subprocess.run(WRAPPER + [UNIT, test], env=full, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def native(project, stored=None):
    """What chartreuse reads: {"HEAD": [...], "MISSING": [...], "UNCERTAIN": [...],
    "ERROR": [...]} and its stderr lines."""
    env = {} if stored is None else {"CR_ALEMBIC_STORED": ",".join(stored)}
    proc = unit_helper("alembic_print_heads", project, **env)
    out = {"HEAD": [], "MISSING": [], "UNCERTAIN": [], "ERROR": []}
    for line in proc.stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word in out:
            out[word].append(rest)
    return out, [l for l in proc.stderr.splitlines() if l.strip()]


def alembic(project, *args, ini=None):
    cmd = [ALEMBIC, "-c", ini or project.ini] + (["-n", project.section] if project.section
                                                else []) + list(args)
    return subprocess.run(cmd, cwd=project.path, capture_output=True, text=True, timeout=300)


def alembic_heads(project):
    """Ids from `alembic heads`: one line per head, the id first, then the branch labels
    in parentheses and "(head)" or "(effective head)"."""
    proc = alembic(project, "heads")
    assert proc.returncode == 0, proc.stderr
    return sorted(line.split()[0] for line in proc.stdout.splitlines() if line.strip())


@pytest.fixture(params=sorted(ap.PROJECTS))
def project(request, tmp_path):
    return ap.PROJECTS[request.param](tmp_path / request.param)


def test_native_heads_match_alembic(project):
    got, err = native(project)
    assert got["UNCERTAIN"] == [] and got["ERROR"] == [], err
    assert got["HEAD"] == alembic_heads(project) == project.heads


def test_missing_down_revision_is_one_clear_error(tmp_path):
    project = ap.missing_down_revision(tmp_path)
    got, err = native(project)
    assert got["ERROR"] and not got["HEAD"]
    assert len(err) == 1 and err[0].startswith("chartreuse: error: "), err
    assert str(project.files["mis03"]) in err[0] and "mis02" in err[0]
    assert alembic(project, "heads").returncode != 0  # Alembic refuses it too


def test_uncertain_script_falls_back(tmp_path):
    project = ap.computed(tmp_path)
    got, err = native(project)
    assert not got["HEAD"] and not got["ERROR"] and not err
    assert str(project.files["comp03"]) in got["UNCERTAIN"][0]
    assert alembic_heads(project) == project.heads  # what the fallback asks


@pytest.mark.parametrize("n", [500, 2000])
def test_long_history_heads(tmp_path, n):
    project = ap.big_linear(tmp_path, n)
    got, err = native(project, stored=[project.revisions[n // 2]])
    assert got["HEAD"] == alembic_heads(project) == project.heads
    assert got["MISSING"] == project.revisions[n // 2 + 1:]


# --- missing: what `alembic upgrade heads` really runs --------------------------------------

def sqlite_copy(project, tmp_path):
    """The project's ini copied by chartreuse, pointing at a SQLite database."""
    db = tmp_path / "db.sqlite"
    ini = tmp_path / "private" / "alembic.ini"
    ini.parent.mkdir()
    proc = unit_helper("alembic_write_ini_from_env", project, CR_ALEMBIC_WRITE_INI=str(ini),
                       CR_ALEMBIC_URL=f"sqlite:///{db}")
    assert "ERROR" not in proc.stdout, proc.stderr
    return ini, db


def db_state(db):
    if not db.exists():
        return [], set()
    with sqlite3.connect(db) as c:
        names = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        stored = sorted(r[0] for r in c.execute("SELECT version_num FROM alembic_version")) \
            if "alembic_version" in names else []
    return stored, {n[2:] for n in names if n.startswith("t_")}


def upgrade(project, ini, target):
    proc = alembic(project, "upgrade", target, ini=str(ini))
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name,targets", [
    ("linear", []), ("linear", ["lin0002"]), ("linear", ["heads"]),
    ("branches", ["a1"]), ("branches", ["b1"]), ("branches", ["a2"]),
    ("merged", ["a2"]), ("merged", ["a2", "b1"]), ("merged", ["heads"]),
    ("depends_on", ["a1"]), ("depends_on", ["a2"]), ("depends_on", ["b1"]),
    ("depends_on", ["heads"]),
    ("annotated", ["ann02"]), ("multi_location", ["loc03"]), ("named_section", ["sec01"]),
    ("ini_in_subfolder", ["sub01"]), ("package_location", ["pkg02"]),
    ("package_version_locations", ["res01"]),
])
def test_missing_is_what_alembic_applies(tmp_path, name, targets):
    project = ap.PROJECTS[name](tmp_path / name)
    ini, db = sqlite_copy(project, tmp_path)
    for target in targets:
        upgrade(project, ini, target)
    stored, before = db_state(db)
    got, err = native(project, stored=stored)
    assert got["ERROR"] == [], err
    upgrade(project, ini, "heads")
    stored_after, after = db_state(db)
    assert set(got["MISSING"]) == after - before
    again, err = native(project, stored=stored_after)
    assert again["MISSING"] == [] and again["ERROR"] == [], err


def test_upgrade_heads_stores_only_the_tips_with_depends_on(tmp_path):
    """The reason "stored == heads" is the wrong test: a2 is a head, yet not stored."""
    project = ap.depends_on(tmp_path / "p")
    ini, db = sqlite_copy(project, tmp_path)
    upgrade(project, ini, "heads")
    assert db_state(db)[0] == ["b2"]
    assert native(project)[0]["HEAD"] == ["a2", "b2"]


def test_unknown_stored_revision_is_an_error(tmp_path):
    project = ap.linear(tmp_path / "p")
    got, err = native(project, stored=["feedbeef"])
    assert got["ERROR"] and not got["MISSING"]
    assert len(err) == 1 and "feedbeef" in err[0]


# --- the ini copy ------------------------------------------------------------------------------

NASTY_INI = """\
# the project's own comments stay
[DEFAULT]
base = %(here)s/migrations

[alembic]
script_location = %(base)s
sqlalchemy.url = driver://old:secret@host/db
    ?continued=1
prepend_sys_path = .
version_table = custom_versions

[loggers]
keys = root
"""

URLS = [
    "postgresql://u:p%40ss@db:5432/app?sslmode=require",
    "postgresql+psycopg2://user:%25%28here%29s%25%25@h/db",
    "postgresql://u:@:/?#%'\"x y@h/d",
    "sqlite:///%(here)s/literally.db",
]


def parsed(path, here):
    c = configparser.ConfigParser(defaults={"here": str(here)})
    assert c.read(path) == [str(path)]
    return c


@pytest.mark.parametrize("url", URLS)
def test_ini_copy_reads_back_with_configparser(tmp_path, url):
    root = tmp_path / "proj"
    ap.write_env(root)
    (root / "alembic.ini").write_text(NASTY_INI)
    project = ap.Project(root, [], [])
    copy = tmp_path / "private" / "copy.ini"
    copy.parent.mkdir()
    proc = unit_helper("alembic_write_ini_from_env", project, CR_ALEMBIC_WRITE_INI=str(copy),
                       CR_ALEMBIC_URL=url)
    assert "ERROR" not in proc.stdout, proc.stderr
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    original, copied = parsed(root / "alembic.ini", root), parsed(copy, copy.parent)
    assert copied.get("alembic", "sqlalchemy.url") == url
    assert copied.get("alembic", "script_location") == str(root / "migrations")
    for section in original.sections():
        mine = dict(original.items(section))
        mine.pop("sqlalchemy.url", None)
        theirs = dict(copied.items(section))
        theirs.pop("sqlalchemy.url", None)
        assert theirs == mine, section
    assert "secret" not in copy.read_text()


def test_alembic_reads_the_copy_like_the_original(tmp_path):
    project = ap.named_section(tmp_path / "proj")
    copy = tmp_path / "private" / "copy.ini"
    copy.parent.mkdir()
    unit_helper("alembic_write_ini_from_env", project, CR_ALEMBIC_WRITE_INI=str(copy),
                CR_ALEMBIC_URL="sqlite://")
    proc = subprocess.run([ALEMBIC, "-c", str(copy), "-n", "second", "heads"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["sec02", "(head)"]


# --- package:path locations -------------------------------------------------------------

@pytest.mark.parametrize("name,reason", [
    ("namespace_package", "nspkg has no __init__.py"),
    ("package_twice", "twice is found in several prepend_sys_path folders"),
    ("extended_path_package", "mentions __path__"),
])
def test_package_location_in_doubt_falls_back(tmp_path, name, reason):
    project = ap.UNCERTAIN_PACKAGES[name](tmp_path / name)
    got, err = native(project)
    assert not got["HEAD"] and not got["ERROR"] and not err
    assert len(got["UNCERTAIN"]) == 1 and reason in got["UNCERTAIN"][0], got["UNCERTAIN"]
    assert str(project.path / "alembic.ini") in got["UNCERTAIN"][0]
    assert alembic_heads(project) == project.heads  # what the fallback asks


def test_package_location_without_prepend_sys_path(tmp_path):
    """Without prepend_sys_path the package comes from sys.path: the alembic command does
    not find the project's own folder there, so Alembic itself fails."""
    project = ap.package_location(tmp_path / "p")
    ini = project.path / "alembic.ini"
    ini.write_text(ini.read_text().replace("prepend_sys_path = .\n", ""))
    got, err = native(project)
    assert "without prepend_sys_path" in got["UNCERTAIN"][0], got
    proc = alembic(project, "heads")
    assert proc.returncode != 0 and "No module named 'myapp'" in proc.stderr


# --- code that runs at import: the reader against Python itself ----------------------------

# Each snippet follows `revision = "orig01"` / `down_revision = None` in a revision script,
# and (run by Python) leaves revision == "rebound": the reader must not take "orig01".
REBINDING = {
    "class_body_global": "class K:\n    global revision\n    revision = 'rebound'\n",
    "class_body_globals": "class K:\n    globals()['revision'] = 'rebound'\n",
    "class_bases": "class K((revision := 'rebound').__class__):\n    pass\n",
    "decorated_class": "@(lambda c: c)\nclass K:\n    global revision\n"
                       "    revision = 'rebound'\n",
    "decorator": "@(lambda f: globals().update(revision='rebound') or f)\n"
                 "def g():\n    pass\n",
    "default_value": "def f(x=(revision := 'rebound')):\n    pass\n",
    "annotation": "def f(x: (revision := 'rebound')):\n    pass\n",
    "lambda_default": "f = lambda x=(revision := 'rebound'): x\n",
    "function_global_called": "def f():\n    global revision\n    revision = 'rebound'\n"
                              "f()\n",
    "function_global_inline": "def f(): global revision; revision = 'rebound'\nf()\n",
    "function_globals_called": "def f():\n    globals()['revision'] = 'rebound'\nf()\n",
    "function_called_by_decorator": "def deco(f):\n    global revision\n"
                                    "    revision = 'rebound'\n    return f\n"
                                    "@deco\ndef g():\n    pass\n",
    "walrus": "(revision := 'rebound')\n",
    "walrus_in_call": "len(revision := 'rebound')\n",
    "comprehension_walrus": "[revision := c for c in ['rebound']]\n",
    "for_target": "for revision in ['rebound']:\n    pass\n",
    "with_as": "import contextlib\nwith contextlib.nullcontext('rebound') as revision:\n"
               "    pass\n",
    "exec": "exec(\"revision = 'rebound'\")\n",
    "augmented": "revision += ''\nrevision = revision.replace('orig01', 'rebound')\n",
    "tuple_unpacking": "_, revision = 1, 'rebound'\n",
    "list_unpacking": "[revision] = ['rebound']\n",
    "if_block": "if True:\n    revision = 'rebound'\n",
    "try_finally": "try:\n    pass\nfinally:\n    revision = 'rebound'\n",
    "match_capture": "match 'rebound':\n    case revision:\n        pass\n",
    "vars": "vars()['revision'] = 'rebound'\n",
    "locals": "locals()['revision'] = 'rebound'\n",
    "frame_globals": "import sys\nsys._getframe().f_globals['revision'] = 'rebound'\n",
    "fstring_walrus": "x = f'{(revision := \"rebound\")}'\n",
    "nested_fstring_walrus": "x = f\"\"\"{f'{(revision := \"rebound\")}'}\"\"\"\n",
}
# Python 3.12 only (PEP 701: a field may hold the f-string's own quote).
REBINDING_312 = {
    "same_quote_nesting": "x = f\"{\"#\"}\"; revision = 'rebound'\n",
    "same_quote_triple": "x = f\"\"\"{\"\"\"\n\"\"\"}\"\"\"; revision = 'rebound'\n",
}
# Code that leaves revision alone: the reader must read "orig01".
HARMLESS = {
    "function_locals": "def upgrade():\n    revision = 'local'\n    for depends_on in []:\n"
                       "        pass\n    global other\n    other = 1\nupgrade()\n",
    "nonlocal": "def f():\n    revision = 1\n    def g():\n        nonlocal revision\n"
                "        revision = 2\n    g()\nf()\n",
    "class_in_function": "def f():\n    class K:\n        revision = 'attr'\n    return K\nf()\n",
    "keyword_arguments": "def deco(**kw):\n    return lambda f: f\n"
                         "@deco(revision='kw')\ndef g(depends_on=None):\n    pass\n"
                         "d = dict(branch_labels=('x',))\n",
    "method_parameter": "class K:\n    x = 1\n    def m(self, revision=None):\n"
                        "        return revision\n",
    "attribute": "import types\nop = types.SimpleNamespace()\nop.revision = 'attr'\n",
    "fstrings": "w, x = 3, 1\ns = f\"{x!r:>{w}}\" + f\"{f'{x}'}\" + f'''{x:{w}}''' + "
                "f\"\\N{BULLET} {{revision = 'no'}}\" + f'{x=}'\n"
                "def f():\n    return f\"{revision}\"\n",
}
HARMLESS_312 = {
    "same_quote_nesting": "x = 1\ns = f\"{\"a\" + f\"{x}\"}\" + f\"{x # revision = 'no'\n}\"\n",
}
PY312 = Path.home() / ".pyenv/versions/3.12.1/bin/python"


def one_script_project(root, code):
    root = Path(root)
    ap.write_ini(root)
    path = ap.write_env(root) / "0001_orig01.py"
    path.write_text(f"revision = 'orig01'\ndown_revision = None\n{code}")
    return ap.Project(root, [], ["orig01"], files={"orig01": path})


def python_revision(path, python="/usr/bin/python3"):
    """`revision` of the script as Alembic loads it (spec_from_file_location)."""
    load = ("import importlib.util, sys\n"
            "spec = importlib.util.spec_from_file_location('m', sys.argv[1])\n"
            "m = importlib.util.module_from_spec(spec)\n"
            "spec.loader.exec_module(m)\n"
            "print(m.revision)\n")
    proc = subprocess.run([str(python), "-c", load, str(path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()[-1]


def python_for(table):
    if table in ("REBINDING_312", "HARMLESS_312"):
        if not PY312.exists():
            pytest.skip(f"{PY312} not installed")
        return PY312
    return "/usr/bin/python3"


@pytest.mark.parametrize("table,name", [(t, n) for t in ("REBINDING", "REBINDING_312")
                                        for n in globals()[t]])
def test_code_that_rebinds_at_import_is_uncertain(tmp_path, table, name):
    project = one_script_project(tmp_path / name, globals()[table][name])
    python = python_for(table)
    assert python_revision(project.files["orig01"], python) == "rebound"
    got, err = native(project)
    assert got["UNCERTAIN"] and not got["HEAD"] and not err, got
    assert str(project.files["orig01"]) + ":" in got["UNCERTAIN"][0]  # file and line
    if python == "/usr/bin/python3":  # Alembic's Python: the fallback gets it right
        project.heads = ["rebound"]
        assert alembic_heads(project) == ["rebound"]


@pytest.mark.parametrize("table,name", [(t, n) for t in ("HARMLESS", "HARMLESS_312")
                                        for n in globals()[t]])
def test_code_that_leaves_the_variables_alone_is_read(tmp_path, table, name):
    project = one_script_project(tmp_path / name, globals()[table][name])
    python = python_for(table)
    assert python_revision(project.files["orig01"], python) == "orig01"
    got, err = native(project)
    assert got["UNCERTAIN"] == [] and got["HEAD"] == ["orig01"], (got, err)
    if python == "/usr/bin/python3":
        assert alembic_heads(project) == ["orig01"]
