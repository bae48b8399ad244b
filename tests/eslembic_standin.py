#!/usr/bin/python3
"""A stand-in for the `eslembic` CLI, for testing chartreuse's eslembic steps.

Neither Elasticsearch nor the real eslembic (Wiremind's alembic-shaped CLI for
Elasticsearch indices, hosted on a private GitLab) can be obtained on these machines, so
`chartreuse migrate` is tested against this script instead. It behaves as far as chartreuse
relies on eslembic: the commands, their exit status, `current` printing `<rev> (head)` when
the indices are at their head, and the URL taken from the environment. It keeps its state
in a JSON file and records every call, so that the tests can assert what ran, where, in
which order and with which environment.

Environment:
  ESLEMBIC_STANDIN_STATE  JSON file {"current": "<rev>" or null, "head": "<rev>"}
                          (missing: current null, head "es0001")
  ESLEMBIC_STANDIN_LOG    every call is appended as one JSON line: argv, cwd, wall time,
                          and the URL variables it was given
  ESLEMBIC_STANDIN_FAIL   a command name (current, upgrade, migrate, clean): that command
                          prints a traceback and exits 1
  ESLEMBIC_STANDIN_FAIL_AFTER_CHANGE
                          a command name: that command changes the state first (upgrade:
                          moves to the head), then fails the same way
  ESLEMBIC_STANDIN_ECHO   "1": print the URL, and its password alone, the way a careless
                          tool would (chartreuse must mask both)

Commands: current, upgrade head, migrate, clean, history. Like eslembic without
`elasticsearch_urls`, every command fails when ELASTICSEARCH_URLS is not set.
"""
import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

DEFAULT_HEAD = "es0001"


def write_state(path, current=None, head=DEFAULT_HEAD):
    Path(path).write_text(json.dumps({"current": current, "head": head}))


def read_state(path):
    p = Path(path)
    if not p.exists():
        return {"current": None, "head": DEFAULT_HEAD}
    return json.loads(p.read_text())


def read_calls(path):
    p = Path(path)
    return [json.loads(l) for l in p.read_text().splitlines() if l.strip()] if p.exists() \
        else []


def _record(argv):
    log = os.environ.get("ESLEMBIC_STANDIN_LOG")
    if not log:
        return
    entry = {"tool": "eslembic", "argv": argv, "cwd": os.getcwd(), "wall": time.time(),
             "ELASTICSEARCH_URLS": os.environ.get("ELASTICSEARCH_URLS"),
             "CHARTREUSE_ESLEMBIC_URL": os.environ.get("CHARTREUSE_ESLEMBIC_URL")}
    with open(log, "a") as f:
        f.write(json.dumps(entry) + "\n")


def _fail(command):
    print("Traceback (most recent call last):")
    print(f'  File "/app/eslembic/versions/next.py", line 12, in {command}')
    print(f"eslembic.errors.MigrationError: {command} went wrong (stand-in failure)")
    return 1


def main(argv):
    _record(argv)
    state_path = os.environ.get("ESLEMBIC_STANDIN_STATE", "eslembic-standin.json")
    state = read_state(state_path)
    url = os.environ.get("ELASTICSEARCH_URLS")
    if not argv:
        print("usage: eslembic current|upgrade head|migrate|clean|history", file=sys.stderr)
        return 2
    if not url:
        print("eslembic: elasticsearch_urls is not configured", file=sys.stderr)
        return 2
    command = argv[0]
    if os.environ.get("ESLEMBIC_STANDIN_ECHO") == "1":
        print(f"INFO  [eslembic] connecting to {url}")
        password = unquote(urlsplit(url).password or "")
        print(f"DEBUG [eslembic] http auth password={password}", file=sys.stderr)
    if os.environ.get("ESLEMBIC_STANDIN_FAIL") == command:
        return _fail(command)
    if command == "current":
        if state["current"]:
            head = " (head)" if state["current"] == state["head"] else ""
            print(f"{state['current']}{head}")
        return 0
    if command == "upgrade":
        if argv[1:] != ["head"]:
            print(f"stand-in: upgrade {' '.join(argv[1:])} is not supported", file=sys.stderr)
            return 2
        print(f"INFO  [eslembic] Running upgrade {state['current']} -> {state['head']}")
        state["current"] = state["head"]
        Path(state_path).write_text(json.dumps(state))
        if os.environ.get("ESLEMBIC_STANDIN_FAIL_AFTER_CHANGE") == command:
            return _fail(command)
        return 0
    if command in ("migrate", "clean"):
        print(f"INFO  [eslembic] {command}: done")
        return 0
    if command == "history":
        print(f"{state['current']} -> {state['head']} (head)")
        return 0
    print(f"eslembic: unknown command {command}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
