"""`chartreuse wait elasticsearch` against a stand-in for Elasticsearch's health API
(tests/es_standin.py): Elasticsearch itself is not obtainable on these machines."""
import time

import pytest

from conftest import SLOWDOWN, run
from es_standin import EsStandIn

PASSWORD = "es: p@ss/w#rd"


@pytest.fixture
def es():
    servers = []

    def make(**kw):
        s = EsStandIn(password=PASSWORD, **kw)
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.stop()


def wait_es(url, timeout=5):
    return run(["wait", "elasticsearch", "--url-env", "CHARTREUSE_ESLEMBIC_URL",
                "--timeout", str(timeout)], env={"CHARTREUSE_ESLEMBIC_URL": url}, timeout=60)


def test_ready_cluster(es):
    s = es(status="yellow")
    r = wait_es(s.url())
    assert r.rc == 0, r.err.decode()
    assert s.requests and s.requests[0].startswith("/_cluster/health?wait_for_status=yellow")


def test_waits_until_the_cluster_turns_yellow(es):
    s = es(status="green", ready_after=2.0)
    start = time.monotonic()
    r = wait_es(s.url(), timeout=20)
    assert r.rc == 0, r.err.decode()
    assert 1.5 <= time.monotonic() - start < 15 * SLOWDOWN
    assert len(s.requests) >= 2


def test_red_cluster_fails_at_the_deadline_without_showing_the_password(es):
    s = es(status="red")
    r = wait_es(s.url(), timeout=2)
    assert r.rc == 1
    # What is awaited, said at once; then the failure at the deadline.
    assert len(r.err_lines) == 2, r.err_lines
    assert r.err_lines[0] == ("chartreuse: elasticsearch: waiting for the cluster (0 s of 2 s): "
                              "HTTP 408, status red")
    assert "not ready after 2 s" in r.err_lines[1] and "status red" in r.err_lines[1]
    assert PASSWORD.encode() not in r.err and b"p%40ss" not in r.err


def test_wrong_credentials_are_not_ready(es):
    s = es(status="green")
    r = wait_es(s.url(password="wrong"), timeout=1)
    assert r.rc == 1 and "HTTP 401" in r.err_lines[-1]


def test_nothing_listening(es):
    s = es()
    url = s.url()
    s.stop()
    r = wait_es(url, timeout=1)
    assert r.rc == 1 and "not ready after 1 s" in r.err_lines[-1]
    assert r.err_lines[0].startswith("chartreuse: elasticsearch: waiting for the cluster (0 s")
