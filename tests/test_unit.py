"""Runs each C unit test (tests/unit/*.c) as its own case."""
import subprocess

import pytest

from conftest import UNIT, WRAPPER


def unit_names():
    try:
        out = subprocess.run([UNIT, "--list"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return ["unit-tests-binary-is-missing"]  # fails below, naming the problem
    return out.stdout.split()


@pytest.mark.parametrize("name", unit_names())
def test_unit(name):
    proc = subprocess.run(WRAPPER + [UNIT, name], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
