"""A Job run as Helm runs a hook Job (src/jobs.c), here by the Helm 3 wrapper, which runs
chartreuse's migration Jobs itself: the person waiting is told at once what is awaited,
then every 5 s how long it has been and how many of its Pods are active."""
import re

import pytest

from conftest import EXAMPLE_CHART, plugin_source
from test_helm_sim import TIMEOUT, Helm

pytestmark = pytest.mark.helm

WAITING = re.compile(r"waiting for the Job shop-chartreuse-upgrade \((\d+) s of (\d+) s\): "
                     r"(\d+) Pods? active$")


def test_a_hook_job_wait_says_what_it_waits_for_as_it_goes(k8s, tmp_path):
    k8s.pod_run_delay = 11  # the migration Pod runs 11 s
    helm = Helm(3, k8s, tmp_path / "helm3")
    helm("plugin", "install", str(plugin_source()))
    p = helm("chartreuse", "install", "shop", str(EXAMPLE_CHART), "--timeout", TIMEOUT)
    lines = p.stderr.splitlines()
    created = [i for i, ln in enumerate(lines)
               if "created the Job shop-chartreuse-upgrade, waiting for it" in ln]
    progress = [(i, WAITING.search(ln)) for i, ln in enumerate(lines) if WAITING.search(ln)]
    # 11 s of running: lines at 5 s and 10 s (more if the Pod was slow to start).
    assert len(created) == 1 and len(progress) >= 2, lines
    assert [int(m.group(1)) for _, m in progress] == [5 * (k + 1) for k in
                                                      range(len(progress))], lines
    assert {m.group(2) for _, m in progress} == {"60"}
    assert {m.group(3) for _, m in progress} == {"1"}
    assert created[0] < progress[0][0]
    assert not k8s.internal_errors
