"""The release: .github/workflows/release.yml (structure checked here, since actionlint is not
a Debian package), `make dist` and `make checksums`, and that the workflow, the install hook
and the C default agree on where releases and the image are published."""
import hashlib
import os
import re
import shlex
import subprocess
import tarfile

import yaml

from conftest import IMAGE_REPOSITORY, REPO

WORKFLOW = REPO / ".github" / "workflows" / "release.yml"
VERSION = (REPO / "VERSION").read_text().strip()


def workflow():
    doc = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 reads the key `on` as True.
    doc["on"] = doc.pop(True, doc.get("on"))
    return doc


def make_targets():
    text = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([A-Za-z0-9_.%/-]+)\s*:(?!=)", text, re.M))
    for line in re.findall(r"^\.PHONY:((?:.*\\\n)*.*)", text, re.M):
        targets.update(line.replace("\\", " ").split())
    return targets


def make_calls(script):
    """The targets of each `make` command line in a run: script."""
    calls = []
    # A ${{ expression }} is one word to the shell once GitHub has replaced it.
    script = re.sub(r"\$\{\{[^}]*\}\}", "EXPR", script)
    for line in script.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        for i, w in enumerate(words):
            # `make` as a command, not as a word in one (apt-get install make)
            if w == "make" and (i == 0 or words[i - 1] in ("&&", "||", ";", "|")):
                args = []
                for a in words[i + 1:]:
                    if a in ("&&", "||", ";", "|"):
                        break
                    args.append(a)
                calls.append([a for a in args if not a.startswith("-") and "=" not in a])
    return calls


def steps():
    for name, job in workflow()["jobs"].items():
        for step in job["steps"]:
            yield name, step


def test_workflow_structure():
    doc = workflow()
    assert doc["name"] and doc["on"] == {"push": {"tags": ["v*"]}}
    jobs = doc["jobs"]
    assert set(jobs) >= {"check", "dist", "image", "release"}
    for name, job in jobs.items():
        assert set(job) <= {"needs", "runs-on", "container", "steps", "strategy", "permissions",
                            "timeout-minutes", "env"}, name
        assert "runs-on" in job and job["steps"], name
        for need in [job["needs"]] if isinstance(job.get("needs"), str) else job.get("needs", []):
            assert need in jobs, f"{name} needs an unknown job {need}"
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), f"{name}: {step}"
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w./-]+@v\d+", step["uses"]), step["uses"]
    # What is published is what was tested: every publishing job waits for the check.
    assert jobs["dist"]["needs"] == "check" and jobs["image"]["needs"] == "check"
    assert set(jobs["release"]["needs"]) == {"dist", "image"}
    assert {s.get("run") for s in jobs["check"]["steps"]} >= {"bash .ci/run"}
    arches = {m["arch"] for m in jobs["dist"]["strategy"]["matrix"]["include"]}
    assert arches == {"amd64", "arm64"}


def test_workflow_make_calls_name_existing_targets():
    targets = make_targets()
    called = set()
    for job, step in steps():
        for call in make_calls(step.get("run", "")):
            assert call, f"{job}: a bare `make`"
            for t in call:
                assert t in targets, f"{job}: make {t}: no such target in the Makefile"
                called.add(t)
    assert called >= {"dist", "checksums"}
    # .ci/run, which the check job runs, is `make check`.
    assert "make check" in (REPO / ".ci" / "run").read_text()


def test_image_and_release_locations_agree():
    doc = workflow()
    assert doc["env"]["IMAGE"] == IMAGE_REPOSITORY
    push = next(s for _, s in steps() if s.get("uses", "").startswith("docker/build-push-action"))
    assert push["with"]["tags"].startswith("${{ env.IMAGE }}:")
    owner = re.fullmatch(r"ghcr\.io/([^/]+)/chartreuse", IMAGE_REPOSITORY).group(1)
    hook = (REPO / "install-binary.sh").read_text()
    url = re.search(r"^RELEASE_URL='([^']+)'", hook, re.M).group(1)
    assert url == (f"https://github.com/{owner}/chartreuse/releases/download/v{{version}}/"
                   "chartreuse_{version}_{os}_{arch}.tar.gz")
    readme = (REPO / "README.md").read_text()
    assert f"repository: {IMAGE_REPOSITORY}" in readme
    assert f"https://github.com/{owner}/chartreuse" in readme


def test_make_dist_builds_an_asset_the_install_hook_takes(tmp_path):
    dist = tmp_path / "dist"
    # Built apart (BUILD, BIN): the suite's other passes run bin/chartreuse meanwhile, and
    # make must not relink it under them.
    p = subprocess.run(["make", "--no-print-directory", "-j2", "-C", str(REPO), "dist",
                        "ARCH=amd64", f"DIST={dist}", f"BUILD={tmp_path / 'build'}",
                        f"BIN={tmp_path / 'bin' / 'chartreuse'}",
                        f"BUNDLE={tmp_path / 'bundle' / 'chartreuse'}"],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    asset = dist / f"chartreuse_{VERSION}_linux_amd64.tar.gz"
    digest = hashlib.sha256(asset.read_bytes()).hexdigest()
    assert (dist / "checksums.txt").read_text() == f"{digest}  {asset.name}\n"
    with tarfile.open(asset) as tar:
        member = tar.getmember("./bin/chartreuse")
        assert member.isfile() and member.mode & 0o111 and member.uid == 0
    # The hook installs it from a mirror on disk (file://) and it runs.
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    for name in ("plugin.yaml", "install-binary.sh"):
        (plugin / name).write_bytes((REPO / name).read_bytes())
    (plugin / "install-binary.sh").chmod(0o755)
    (plugin / "plugins" / "chartreuse-post-render").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("CHARTREUSE_BUILD", "HELM_BIN")}
    env["CHARTREUSE_RELEASE_URL"] = f"file://{dist}/chartreuse_{{version}}_{{os}}_{{arch}}.tar.gz"
    p = subprocess.run(["bash", str(plugin / "install-binary.sh")], capture_output=True,
                       text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    out = subprocess.run([str(plugin / "bin" / "chartreuse"), "version"], capture_output=True,
                         text=True)
    assert out.stdout.strip() == f"chartreuse {VERSION}"
