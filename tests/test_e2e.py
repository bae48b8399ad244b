"""End to end: the real Helm installs and upgrades the example chart through chartreuse
(`helm chartreuse install|upgrade`, the plugin installed from this repository) against the
simulated API server, whose Job controller and job runner (tests/k8s_sim/jobrunner.py) run
the migration Job's containers as local processes: the real `chartreuse wait` and
`chartreuse migrate`, the real Alembic, the real PostgreSQL. Each scenario asserts the
database's state, the API request log and the Deployments' scales.

The application image is played by the example Alembic project (examples/alembic) at
/app/alembic: tag 1.0 is the project as shipped, 2.0 adds one revision, 3.0 adds a
revision that fails.

Helm 3 runs a post-renderer on non-hook manifests only and reads no hook annotation in its
output (tests/test_helm_sim.py::test_chartreuse_migration_job_is_a_hook): under Helm 3 the
wrapper runs the Jobs itself as Helm would run the hooks (README, "Helm 3"), so every
scenario holds for both majors."""
import json
import shutil
import uuid

import pytest
import yaml

from conftest import BIN, EXAMPLE_CHART, REPO
from k8s_sim.jobrunner import Image, JobRunner
from test_helm_sim import Helm, release_secrets

pytestmark = [pytest.mark.helm, pytest.mark.e2e]

APP = "registry.example.com/acme/billing"
VERSION = (REPO / "VERSION").read_text().strip()
TIMEOUT = "120s"
SCALES = {"shop-demo-web": 2, "shop-demo-worker": 1}
HEAD_V1 = "e27a6b4d8c13"

NEW_REVISION = '''"""add invoice.note

Revision ID: f00dcafe0002
Revises: e27a6b4d8c13
"""
from alembic import op
import sqlalchemy as sa

revision = "f00dcafe0002"
down_revision = "e27a6b4d8c13"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("invoice", sa.Column("note", sa.Text(), nullable=True))


def downgrade():
    op.drop_column("invoice", "note")
'''

FAILING_REVISION = '''"""a revision that fails half-way

Revision ID: bad0000003
Revises: f00dcafe0002
"""
from alembic import op

revision = "bad0000003"
down_revision = "f00dcafe0002"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("CREATE TABLE half_done (id integer)")
    op.execute("SELECT * FROM no_such_table")


def downgrade():
    pass
'''


@pytest.fixture
def projects(tmp_path):
    """Alembic projects standing for the application image's tags."""
    v1 = tmp_path / "app-1.0"
    shutil.copytree(REPO / "examples" / "alembic", v1,
                    ignore=shutil.ignore_patterns("__pycache__"))
    v2 = tmp_path / "app-2.0"
    shutil.copytree(v1, v2)
    (v2 / "versions" / "f00dcafe0002_add_invoice_note.py").write_text(NEW_REVISION)
    v3 = tmp_path / "app-3.0"
    shutil.copytree(v2, v3)
    (v3 / "versions" / "bad0000003_fails.py").write_text(FAILING_REVISION)
    return {"1.0": v1, "2.0": v2, "3.0": v3}


class Cluster:
    """The simulator with the job runner, a database, Helm of one major with the plugin."""

    def __init__(self, sim, pg, helm, projects, tmp_path):
        self.sim, self.pg, self.helm, self.tmp = sim, pg, helm, tmp_path
        self.db = "e2e_" + uuid.uuid4().hex[:8]
        pg.create_database(self.db)
        images = {f"chartreuse/chartreuse:{VERSION}": Image(
            files={"/opt/chartreuse/bin/chartreuse": BIN}, path=["/opt/chartreuse/bin"],
            workdir="/tmp")}
        for tag, project in projects.items():
            images[f"{APP}:{tag}"] = Image(files={"/app/alembic": project}, workdir="/app",
                                           env={"PYTHONDONTWRITEBYTECODE": "1"})
        self.runner = JobRunner(sim, images=images, workdir=tmp_path / "pods",
                                translate_config_files=True, container_timeout=120)
        sim.kubelet_hook = self.runner
        helm("plugin", "install", str(REPO))

    def values(self, **chartreuse):
        """A values file pointing the chart's database at the test's PostgreSQL."""
        db = {"name": "main", "host": self.pg.host, "port": self.pg.port,
              "user": "cr_admin", "password": "admin-pw", "database": self.db,
              "alembicDirectory": "/app/alembic"}
        values = {"chartreuse": {"databases": [db], **chartreuse}}
        path = self.tmp / f"values-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(yaml.safe_dump(values))
        return path

    def deploy(self, verb, tag, check=True, **chartreuse):
        return self.helm("chartreuse", verb, "shop", str(EXAMPLE_CHART), "-f",
                         str(self.values(**chartreuse)), "--set", f"image.tag={tag}",
                         "--timeout", TIMEOUT, check=check)

    def stored(self):
        rows = self.pg.psql(self.db, "SELECT version_num FROM alembic_version") \
            if self.pg.psql(self.db, "SELECT to_regclass('alembic_version')")[0][0] else []
        return sorted(r[0] for r in rows)

    def replicas(self):
        return {n: self.sim.get("deploy", n)["spec"]["replicas"] for n in SCALES}

    def scale_calls(self):
        """(deployment, replicas, time) of every write to a Deployment's scale."""
        return [(r.path.split("/")[-2], json.loads(r.body)["spec"]["replicas"], r.time)
                for r in self.sim.request_log
                if r.method == "PATCH" and r.path.endswith("/scale")]

    def job_logs(self):
        """What every migration Job Pod printed, for failure messages."""
        names = {o["metadata"]["name"] for _, o in self.sim.history("pods")
                 if "chartreuse" in o["metadata"]["name"]}
        return "\n".join(f"--- {n}\n{self.runner.logs(n)}" for n in sorted(names))

    def close(self):
        self.runner.close()
        self.pg.drop_database(self.db)


@pytest.fixture
def cluster(k8s, pg, helm_major, projects, tmp_path):
    c = Cluster(k8s, pg, Helm(helm_major, k8s, tmp_path / "helm"), projects, tmp_path)
    yield c
    c.close()


def test_install_migrates_and_leaves_the_deployments_running(cluster):
    cluster.deploy("install", "1.0")
    assert cluster.stored() == [HEAD_V1]
    assert cluster.replicas() == SCALES
    assert release_secrets(cluster.sim, "shop")[1]["metadata"]["labels"]["status"] == \
        "deployed"


def test_upgrade_with_a_new_revision_stops_migrates_and_restarts(cluster):
    cluster.deploy("install", "1.0")
    cluster.sim.request_log.clear()
    cluster.deploy("upgrade", "2.0")
    assert cluster.stored() == ["f00dcafe0002"]
    calls = cluster.scale_calls()
    downs = [t for _, replicas, t in calls if replicas == 0]
    ups = [t for _, replicas, t in calls if replicas != 0]
    assert len(downs) == len(SCALES) and len(ups) == len(SCALES)
    assert max(downs) < min(ups)
    assert cluster.replicas() == SCALES


def test_upgrade_without_a_new_revision_touches_nothing(cluster):
    cluster.deploy("install", "1.0")
    cluster.sim.request_log.clear()
    cluster.deploy("upgrade", "1.0", stopPods=True)
    assert cluster.stored() == [HEAD_V1]
    assert cluster.scale_calls() == []
    assert cluster.replicas() == SCALES


def test_failing_migration_fails_the_upgrade_and_rollback_serves_again(cluster):
    cluster.deploy("install", "1.0")
    cluster.deploy("upgrade", "2.0")
    p = cluster.deploy("upgrade", "3.0", check=False)
    assert p.returncode != 0
    assert "shop-chartreuse-upgrade" in p.stderr  # Helm names the failed hook
    # One transaction: the failed revision left nothing; the pods came back.
    assert cluster.stored() == ["f00dcafe0002"]
    assert cluster.pg.psql(cluster.db, "SELECT to_regclass('half_done')")[0][0] is None
    assert cluster.replicas() == SCALES
    cluster.helm("rollback", "shop", "2", "--timeout", TIMEOUT)
    image = cluster.sim.get("deploy", "shop-demo-web")["spec"]["template"]["spec"][
        "containers"][0]["image"]
    assert image == f"{APP}:2.0"
    assert cluster.replicas() == SCALES


def test_before_deployment_mode_migrates_before_the_new_spec(cluster):
    cluster.deploy("install", "1.0", upgradeBeforeDeployment=True)
    assert cluster.stored() == [HEAD_V1]
    assert cluster.replicas() == SCALES
    cluster.sim.request_log.clear()
    cluster.deploy("upgrade", "2.0", upgradeBeforeDeployment=True)
    assert cluster.stored() == ["f00dcafe0002"]
    # The migration stopped the old pods before Helm applied the new Deployment spec.
    downs = [t for _, replicas, t in cluster.scale_calls() if replicas == 0]
    new_spec = [r.time for r in cluster.sim.request_log
                if r.method in ("PATCH", "PUT") and r.path.endswith("/deployments/shop-demo-web")
                and f"{APP}:2.0" in r.body.decode(errors="replace")]
    assert len(downs) == len(SCALES) and new_spec, cluster.job_logs()
    assert max(downs) < min(new_spec)
    # ...and the restore Job left nothing at 0, HPA-managed web included.
    assert cluster.replicas() == SCALES, cluster.job_logs()
    for name in SCALES:
        marks = cluster.sim.get("deploy", name)["metadata"].get("annotations") or {}
        assert "chartreuse.wiremind.io/stopped" not in marks


REPORTING_CONFIG = """\
{{- /* A second, independent migration of this release: its own database, its own Job,
after the first one (hook weight 2). */ -}}
apiVersion: chartreuse.wiremind.io/v1
kind: ChartreuseConfig
metadata:
  name: reporting
release: {{ .Release.Name | quote }}
namespace: {{ .Release.Namespace | quote }}
upgradeJobWeight: "2"
stopPods: false
image:
  repository: %(app)s
  tag: {{ .Values.image.tag | quote }}
databases:
{{ toYaml .Values.reporting.databases | indent 2 }}
"""


def test_two_databases_and_two_jobs_in_weight_order(cluster, tmp_path):
    chart = tmp_path / "chart"
    shutil.copytree(EXAMPLE_CHART, chart)
    (chart / "templates" / "chartreuse-reporting.yaml").write_text(
        REPORTING_CONFIG % {"app": APP})
    second = cluster.db + "_reporting"
    cluster.pg.create_database(second)
    try:
        main_db = {"name": "main", "host": cluster.pg.host, "port": cluster.pg.port,
                   "user": "cr_admin", "password": "admin-pw", "database": cluster.db,
                   "alembicDirectory": "/app/alembic"}
        values = tmp_path / "two.yaml"
        values.write_text(yaml.safe_dump({
            "image": {"tag": "1.0"},
            "chartreuse": {"databases": [main_db]},
            "reporting": {"databases": [dict(main_db, name="reporting", database=second)]}}))
        cluster.helm("chartreuse", "install", "shop", str(chart), "-f", str(values),
                     "--timeout", TIMEOUT)
        assert cluster.stored() == [HEAD_V1]
        rows = cluster.pg.psql(second, "SELECT version_num FROM alembic_version")
        assert [r[0] for r in rows] == [HEAD_V1]
        # Weight 1 ran to completion before weight 2 was created.
        events = [(t, o["metadata"]["name"], [c["type"] for c in (o.get("status") or {})
                                              .get("conditions") or []
                                              if c.get("status") == "True"])
                  for t, o in cluster.sim.history("jobs")]
        first_done = next(i for i, (t, n, conds) in enumerate(events)
                          if n == "shop-chartreuse-upgrade" and "Complete" in conds)
        second_made = next(i for i, (t, n, _) in enumerate(events)
                           if n == "shop-reporting-upgrade" and t == "ADDED")
        assert first_done < second_made, events
        assert cluster.replicas() == SCALES
    finally:
        cluster.pg.drop_database(second)
