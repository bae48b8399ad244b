"""Alembic projects for the tests, written into a given directory.

Each builder writes `alembic.ini`, a bare `env.py` (an engine from `sqlalchemy.url`,
online and offline modes, `version_table`/`version_table_schema` taken from the ini like
chartreuse does) and revision scripts whose upgrade creates one table `t_<revision>`, so
that an upgrade really changes the database. A builder returns a `Project` saying what
Alembic should find: the heads (sorted, as `alembic heads` lists them, effective heads
included) and the revisions in an order Alembic can apply them.
"""
from dataclasses import dataclass, field
from pathlib import Path

ENV_PY = '''\
from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config
options = dict(
    version_table=config.get_main_option("version_table", "alembic_version"),
    version_table_schema=config.get_main_option("version_table_schema") or None,
)

if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True,
                      **options)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = engine_from_config(config.get_section(config.config_ini_section),
                                prefix="sqlalchemy.", poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()
'''

PLAIN = '''\
"""{message}

Revision ID: {doc_revision}
Revises: {doc_revises}
Create Date: 2024-05-01 12:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = {revision!r}
down_revision = {down_revision!r}
branch_labels = {branch_labels!r}
depends_on = {depends_on!r}
{extra}

def upgrade():
    {upgrade}


def downgrade():
    op.drop_table("t_{revision}")
'''

# What `alembic revision` writes since Alembic 1.13.
ANNOTATED = '''\
"""{message}

Revision ID: {doc_revision}
Revises: {doc_revises}
Create Date: 2024-05-01 12:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = {revision!r}
down_revision: Union[str, Sequence[str], None] = {down_revision_text}
branch_labels: Union[str, Sequence[str], None] = {branch_labels!r}
depends_on: Union[str, Sequence[str], None] = {depends_on!r}
{extra}

def upgrade() -> None:
    {upgrade}


def downgrade() -> None:
    op.drop_table("t_{revision}")
'''


@dataclass
class Project:
    path: Path
    heads: list
    revisions: list                 # every id, parents before children
    ini: str = "alembic.ini"
    section: str = None             # None: [alembic]
    broken: bool = False            # Alembic itself refuses the scripts
    uncertain: bool = False         # valid for Alembic, not readable natively
    files: dict = field(default_factory=dict)  # revision id -> script path

    def alembic_args(self):
        """The arguments that select this project's config for the alembic CLI."""
        return ["-c", self.ini] + (["-n", self.section] if self.section else [])

    def table(self, revision):
        return f"t_{revision}"


def create_table(revision):
    return f'op.create_table("t_{revision}", sa.Column("id", sa.Integer, primary_key=True))'


def write_ini(root, section="alembic", script_location="%(here)s/migrations", extra=""):
    Path(root).mkdir(parents=True, exist_ok=True)
    Path(root, "alembic.ini").write_text(
        f"[{section}]\nscript_location = {script_location}\n{extra}"
        "sqlalchemy.url = driver://user:pass@localhost/dbname\n")


def write_env(root, location="migrations"):
    d = Path(root, location)
    (d / "versions").mkdir(parents=True, exist_ok=True)
    (d / "env.py").write_text(ENV_PY)
    return d / "versions"


def revision_script(revision, down, style="plain", branch_labels=None, depends_on=None,
                    doc_revision=None, doc_revises=None, extra="", upgrade=None):
    """The text of one revision script. doc_revision/doc_revises let the docstring lie."""
    if isinstance(down, list):
        down = tuple(down)
    revises = ", ".join(down) if isinstance(down, tuple) else (down or "")
    values = dict(
        message=f"create t_{revision}", revision=revision, down_revision=down,
        branch_labels=branch_labels, depends_on=depends_on,
        doc_revision=doc_revision or revision,
        doc_revises=revises if doc_revises is None else doc_revises,
        extra=extra, upgrade=upgrade or create_table(revision))
    if style == "plain":
        return PLAIN.format(**values)
    if isinstance(down, tuple):     # Alembic's formatter splits long merges over lines
        values["down_revision_text"] = "(\n    " + ",\n    ".join(map(repr, down)) + ",\n)"
    else:
        values["down_revision_text"] = repr(down)
    return ANNOTATED.format(**values)


def write_revisions(root, specs, style="plain", versions=None):
    """specs: (revision, down, keyword arguments of revision_script) tuples."""
    versions = Path(versions) if versions else write_env(root)
    files = {}
    for n, (rev, down, kw) in enumerate(specs):
        path = versions / f"{n:04d}_{rev}_create.py"
        path.write_text(revision_script(rev, down, style=kw.pop("style", style), **kw))
        files[rev] = path
    return files


def _project(root, specs, heads, style="plain", **kw):
    root = Path(root)
    write_ini(root)
    files = write_revisions(root, specs, style)
    return Project(root, sorted(heads), [s[0] for s in specs], files=files, **kw)


def linear(root, n=3):
    specs = [(f"lin{i:04d}", f"lin{i - 1:04d}" if i > 1 else None, {}) for i in range(1, n + 1)]
    return _project(root, specs, [specs[-1][0]])


def branches(root):
    """base -> a1 -> a2 and base -> b1: a branch point, two heads."""
    specs = [("base01", None, {}), ("a1", "base01", {}), ("b1", "base01", {}),
             ("a2", "a1", {})]
    return _project(root, specs, ["a2", "b1"])


def merged(root):
    """branches() plus a merge revision of both heads."""
    specs = [("base01", None, {}), ("a1", "base01", {}), ("b1", "base01", {}),
             ("a2", "a1", {}), ("merge01", ("a2", "b1"), {})]
    return _project(root, specs, ["merge01"])


def depends_on(root):
    """Two roots: a1 (label "alpha") -> a2, and b1 -> b2, where b1 depends on the label
    "alpha" and b2 depends on a2. a2 is an "effective head": a head by down_revision that
    `upgrade heads` leaves out of the version table, b2 standing for it."""
    specs = [("a1", None, {"branch_labels": ("alpha",)}), ("a2", "a1", {}),
             ("b1", None, {"branch_labels": ("beta",), "depends_on": "alpha"}),
             ("b2", "b1", {"depends_on": ("a2",)})]
    return _project(root, specs, ["a2", "b2"])


def annotated(root):
    """Alembic >= 1.13 style: type annotations, and a merge written over several lines."""
    specs = [("ann01", None, {}), ("ann02", "ann01", {}), ("ann03", "ann01", {}),
             ("ann04", ("ann02", "ann03"), {})]
    return _project(root, specs, ["ann04"], style="annotated")


def lying_docstring(root):
    """Docstrings whose Revision ID / Revises lines disagree with the variables."""
    specs = [("doc01", None, {"doc_revision": "doc99"}),
             ("doc02", "doc01", {"doc_revises": "doc77"}),
             ("doc03", "doc02", {"doc_revision": "doc01", "doc_revises": "doc03"})]
    return _project(root, specs, ["doc03"])


COMMENTED = '''
# revision = "fake01"
# down_revision = "doc01"
"""
revision = "fake02"
down_revision = None
"""
EXAMPLE = \'\'\'revision = "fake03"\'\'\'
'''


def commented_out(root):
    """Scripts where `revision =` also appears commented out, inside a module-level
    string, and as a local variable of upgrade()."""
    local = 'revision = "fake04"\n    ' + create_table("com02")
    specs = [("com01", None, {}), ("com02", "com01", {"extra": COMMENTED, "upgrade": local}),
             ("com03", "com02", {"extra": COMMENTED})]
    return _project(root, specs, ["com03"])


def missing_down_revision(root):
    """Broken: mis02 is gone, mis03 still names it as its down_revision."""
    specs = [("mis01", None, {}), ("mis03", "mis02", {})]
    return _project(root, specs, ["mis03"], broken=True)


def add_computed(p, rev, down, versions=None):
    """Adds a revision whose id is built by an expression: valid for Alembic, not readable
    natively, so p becomes uncertain."""
    extra = f'revision = "{rev[:-2]}" + "{rev[-2:]}"\n'
    script = revision_script(rev, down).replace(f"revision = {rev!r}\n", extra)
    path = Path(versions or p.path / "migrations" / "versions") / f"9999_{rev}_create.py"
    path.write_text(script)
    p.heads, p.revisions, p.uncertain = [rev], p.revisions + [rev], True
    p.files[rev] = path
    return p


def computed(root):
    """Valid for Alembic, not readable natively: a revision id built by an expression."""
    return add_computed(linear(root, 2), "comp03", "lin0002")


def failing(root):
    """Two good revisions, then one whose upgrade fails after creating its table."""
    specs = [("ok01", None, {}), ("ok02", "ok01", {}),
             ("bad03", "ok02", {"upgrade": create_table("bad03") +
                                '\n    op.execute("SELECT * FROM no_such_table")'})]
    return _project(root, specs, ["bad03"])


def multi_location(root):
    """version_locations over two directories (and one that does not exist), split with
    version_path_separator = os; script_location relative to the project directory."""
    root = Path(root)
    write_env(root)
    extra = ("version_locations = %(here)s/migrations/versions:%(here)s/more:"
             "%(here)s/absent\nversion_path_separator = os\n")
    write_ini(root, script_location="migrations", extra=extra)
    more = root / "more"
    more.mkdir()
    files = write_revisions(root, [("loc01", None, {}), ("loc02", "loc01", {})])
    files.update(write_revisions(root, [("loc03", "loc02", {}), ("loc04", "loc02", {})],
                                 versions=more))
    return Project(root, ["loc03", "loc04"], ["loc01", "loc02", "loc03", "loc04"],
                   files=files)


def named_section(root):
    """The project lives in [second] (alembic -n second); [alembic] points elsewhere."""
    root = Path(root)
    write_env(root)
    Path(root, "alembic.ini").write_text(
        "[alembic]\nscript_location = %(here)s/nowhere\n\n"
        "[second]\nscript_location = %(here)s/migrations\n"
        "sqlalchemy.url = driver://user:pass@localhost/dbname\n")
    files = write_revisions(root, [("sec01", None, {}), ("sec02", "sec01", {})])
    return Project(root, ["sec02"], ["sec01", "sec02"], section="second", files=files)


def ini_in_subfolder(root):
    """alembicConfigFile conf/alembic.ini with script_location = migrations: relative to
    the directory Alembic runs in, not to the ini's folder; version_locations mixes
    %(here)s (the ini's folder) and a relative path."""
    root = Path(root)
    write_env(root)
    (root / "conf").mkdir()
    (root / "conf" / "alembic.ini").write_text(
        "[alembic]\nscript_location = migrations\n"
        "version_locations = %(here)s/../migrations/versions more\n"
        "sqlalchemy.url = driver://user:pass@localhost/dbname\n")
    more = root / "more"
    more.mkdir()
    files = write_revisions(root, [("sub01", None, {}), ("sub02", "sub01", {})])
    files.update(write_revisions(root, [("sub03", "sub02", {})], versions=more))
    return Project(root, ["sub03"], ["sub01", "sub02", "sub03"], ini="conf/alembic.ini",
                   files=files)


def write_package(root, dotted, init=""):
    """The regular package `dotted` under root, its __init__.py holding `init` (and
    those of its parents, if new, empty); returns its folder."""
    d = Path(root)
    for part in dotted.split("."):
        d = d / part
        d.mkdir(parents=True, exist_ok=True)
        if not (d / "__init__.py").exists():
            (d / "__init__.py").write_text("")
    (d / "__init__.py").write_text(init)
    return d


def package_location(root):
    """script_location = myapp.db:migrations, the package found through
    prepend_sys_path = . (the alembic command does not put its working directory on
    sys.path by itself)."""
    root = Path(root)
    write_package(root, "myapp", '"""The application."""\nfrom os import path\n')
    versions = write_env(write_package(root, "myapp.db"))
    write_ini(root, script_location="myapp.db:migrations", extra="prepend_sys_path = .\n")
    files = write_revisions(root, [("pkg01", None, {}), ("pkg02", "pkg01", {}),
                                   ("pkg03", "pkg01", {})], versions=versions)
    return Project(root, ["pkg02", "pkg03"], ["pkg01", "pkg02", "pkg03"], files=files)


def package_version_locations(root):
    """Both script_location and version_locations as package resources, the package in
    a src/ folder named by a %(here)s prepend_sys_path entry (after one that does not
    exist)."""
    root = Path(root)
    write_package(root / "src", "shop")
    versions = write_env(root / "src" / "shop", "alembic")
    more = root / "src" / "shop" / "more_versions"
    more.mkdir()
    write_ini(root, script_location="shop:alembic",
              extra="prepend_sys_path = absent %(here)s/src\n"
                    "version_locations = shop:alembic/versions shop:more_versions\n")
    files = write_revisions(root, [("res01", None, {})], versions=versions)
    files.update(write_revisions(root, [("res02", "res01", {})], versions=more))
    return Project(root, ["res02"], ["res01", "res02"], files=files)


def namespace_package(root):
    """script_location = nspkg:migrations where nspkg has no __init__.py: a namespace
    package (Python may find portions of it anywhere on sys.path): uncertain."""
    root = Path(root)
    versions = write_env(root / "nspkg")
    write_ini(root, script_location="nspkg:migrations", extra="prepend_sys_path = .\n")
    files = write_revisions(root, [("ns01", None, {})], versions=versions)
    return Project(root, ["ns01"], ["ns01"], files=files, uncertain=True)


def package_twice(root):
    """The package in two prepend_sys_path folders: uncertain (Python takes the first)."""
    root = Path(root)
    for where in ("a", "b"):
        write_package(root / where, "twice")
    versions = write_env(root / "a" / "twice")
    write_ini(root, script_location="twice:migrations", extra="prepend_sys_path = a b\n")
    files = write_revisions(root, [("tw01", None, {})], versions=versions)
    return Project(root, ["tw01"], ["tw01"], files=files, uncertain=True)


def extended_path_package(root):
    """The package's __init__.py extends its __path__ (pkgutil): uncertain."""
    root = Path(root)
    write_package(root, "ext", "__path__ = __import__('pkgutil').extend_path(__path__, "
                               "__name__)\n")
    versions = write_env(root / "ext")
    write_ini(root, script_location="ext:migrations", extra="prepend_sys_path = .\n")
    files = write_revisions(root, [("ext01", None, {})], versions=versions)
    return Project(root, ["ext01"], ["ext01"], files=files, uncertain=True)


# Every project `alembic heads` can read, by name; the broken and uncertain ones apart.
PROJECTS = {
    "linear": linear, "branches": branches, "merged": merged, "depends_on": depends_on,
    "annotated": annotated, "lying_docstring": lying_docstring,
    "commented_out": commented_out, "multi_location": multi_location,
    "named_section": named_section, "failing": failing, "ini_in_subfolder": ini_in_subfolder,
    "package_location": package_location,
    "package_version_locations": package_version_locations,
}
SPECIAL = {"missing_down_revision": missing_down_revision, "computed": computed}
# Valid for Alembic, but the folder of their package:path location is not certain.
UNCERTAIN_PACKAGES = {"namespace_package": namespace_package, "package_twice": package_twice,
                      "extended_path_package": extended_path_package}


def big_linear(root, n):
    """n revisions in a line (for the benchmarks), written without the templating above."""
    root = Path(root)
    write_ini(root)
    versions = write_env(root)
    ids = [f"{i:012x}" for i in range(1, n + 1)]
    for i, rev in enumerate(ids):
        down = repr(ids[i - 1]) if i else "None"
        (versions / f"{rev}_step.py").write_text(
            f'"""step {i + 1}\n\nRevision ID: {rev}\n"""\n'
            "from alembic import op\nimport sqlalchemy as sa\n\n"
            f"revision = {rev!r}\ndown_revision = {down}\n"
            "branch_labels = None\ndepends_on = None\n\n\n"
            f"def upgrade():\n    {create_table(rev)}\n\n\n"
            f"def downgrade():\n    op.drop_table(\"t_{rev}\")\n")
    return Project(root, [ids[-1]], ids)
