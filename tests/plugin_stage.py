"""The directory the Helm tests give `helm plugin install`.

Normally the repository itself, whose install hook builds bin/chartreuse. When the suite runs
another binary (the sanitizer build) or wraps it (valgrind), Helm must run that too, so the
plugin is staged in a directory of its own: the repository's plugin.yaml, install hook and
Helm 4 post-renderer plugin, a bin/chartreuse that runs CHARTREUSE_WRAPPER + CHARTREUSE_BIN,
and a Makefile for which that bin/chartreuse is already built (the hook's `make` is then a
no-op). The post-renderer's name (argv[0] chartreuse-post-render) is kept through a link
named like it."""
import os
import shlex
import shutil
import tempfile
from pathlib import Path

_staged = None


def plugin_source(repo, binary, wrapper):
    global _staged
    if not wrapper and Path(binary).resolve() == (repo / "bin" / "chartreuse").resolve():
        return repo
    if _staged is None:
        _staged = _stage(repo, Path(binary).resolve(), wrapper)
    return _staged


def _stage(repo, binary, wrapper):
    root = Path(tempfile.mkdtemp(prefix="chartreuse-plugin-"))
    # Helm 3 names the installed plugin after the directory.
    d = root / repo.name
    d.mkdir()
    for name in ("plugin.yaml", "install-binary.sh", "VERSION"):
        shutil.copy2(repo / name, d / name)
    shutil.copytree(repo / "plugins", d / "plugins",
                    ignore=shutil.ignore_patterns("bin"))
    real = d / "real"
    real.mkdir()
    (real / "chartreuse").symlink_to(binary)
    (real / "chartreuse-post-render").symlink_to(binary)
    prefix = " ".join(shlex.quote(w) for w in wrapper)
    (d / "bin").mkdir()
    script = d / "bin" / "chartreuse"
    script.write_text(
        "#!/bin/sh\n"
        "# Runs the binary under test as Helm would run the plugin's own.\n"
        f'real={shlex.quote(str(real))}\n'
        'case "${0##*/}" in\n'
        f'  chartreuse-post-render) exec {prefix} "$real/chartreuse-post-render" "$@" ;;\n'
        f'  *) exec {prefix} "$real/chartreuse" "$@" ;;\n'
        "esac\n")
    script.chmod(0o755)
    (d / "Makefile").write_text("# staged plugin: bin/chartreuse is ready\nbin/chartreuse: ;\n")
    return d


def cleanup():
    if _staged is not None:
        shutil.rmtree(_staged.parent, ignore_errors=True)
