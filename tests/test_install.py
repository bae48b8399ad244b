"""install-binary.sh, the plugin's install hook: the release download (checksums, atomic
install), the fallback to a source build, its errors, and the missing build dependencies.

A local HTTP server serves release layouts under one prefix each; CHARTREUSE_RELEASE_URL
points the hook at one of them. The hook runs in a copy of the plugin whose Makefile is a
stub that "builds" a recognisable bin/chartreuse, so the fallback costs no compilation."""
import hashlib
import http.server
import io
import os
import shutil
import socket
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

from conftest import BIN, REPO, helm_path

VERSION = (REPO / "VERSION").read_text().strip()
ASSET = f"chartreuse_{VERSION}_linux_amd64.tar.gz"
PATTERN = "http://127.0.0.1:{port}/{layout}/v{{version}}/chartreuse_{{version}}_{{os}}_{{arch}}.tar.gz"
BUILT = "chartreuse built-from-source"
OLD = "chartreuse old-good-install"


def tarball(files):
    """A release tarball: {member path: (bytes, mode)}."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def sums(entries):
    return "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n"
                   for name, data in entries.items()).encode()


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/error/"):
            self.send_error(503, "down for maintenance")
            return
        super().do_GET()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("releases")
    real = Path(BIN).resolve().read_bytes()
    good = tarball({"bin/chartreuse": (real, 0o755),
                    "lib/libexample.so.1": (b"not really a library", 0o644)})
    broken = tarball({"bin/chartreuse": (b"#!/bin/sh\nexit 1\n", 0o755)})
    other = "chartreuse_%s_linux_arm64.tar.gz" % VERSION
    layouts = {
        "good": {ASSET: good, other: good, "checksums.txt": sums({ASSET: good, other: good})},
        "corrupt": {ASSET: good[:-1] + bytes([good[-1] ^ 1]),
                    "checksums.txt": sums({ASSET: good})},
        "missing-asset": {"checksums.txt": sums({ASSET: good})},
        "no-entry": {other: good, "checksums.txt": sums({other: good})},
        "no-release": {},
        "not-running": {ASSET: broken, "checksums.txt": sums({ASSET: broken})},
    }
    for layout, files in layouts.items():
        d = root / layout / f"v{VERSION}"
        d.mkdir(parents=True)
        for name, data in files.items():
            (d / name).write_bytes(data)
    handler = lambda *a, **kw: Handler(*a, directory=str(root), **kw)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def plugin(tmp_path):
    """A copy of the plugin whose `make bin/chartreuse` writes a stub binary."""
    d = tmp_path / "chartreuse"
    d.mkdir()
    for name in ("plugin.yaml", "install-binary.sh", "VERSION"):
        shutil.copy2(REPO / name, d / name)
    shutil.copytree(REPO / "plugins", d / "plugins", ignore=shutil.ignore_patterns("bin"))
    (d / "Makefile").write_text(
        "bin/chartreuse:\n"
        "\tmkdir -p bin\n"
        f"\tprintf '#!/bin/sh\\necho {BUILT}\\n' > $@\n"
        "\tchmod 755 $@\n")
    return d


def tools_path(tmp_path, drop=(), stubs=None):
    """A PATH directory with every command of /usr/bin and /bin but `drop`, plus `stubs`
    ({name: shell script body})."""
    d = tmp_path / "path"
    d.mkdir()
    for src in (Path("/usr/local/bin"), Path("/usr/bin"), Path("/bin")):
        if not src.is_dir():
            continue
        for exe in src.iterdir():
            if exe.name in drop or (d / exe.name).exists() or (d / exe.name).is_symlink():
                continue
            (d / exe.name).symlink_to(exe)
    for name, body in (stubs or {}).items():
        p = d / name
        if p.is_symlink():
            p.unlink()
        p.write_text("#!/bin/sh\n" + body)
        p.chmod(0o755)
    return str(d)


def hook(plugin, url=None, path=None, build=False, extra=None):
    env = {k: v for k, v in os.environ.items()
           if k not in ("CHARTREUSE_BUILD", "HELM_PLUGIN_DIR", "HELM_BIN")}
    if url is not None:
        env["CHARTREUSE_RELEASE_URL"] = url
    if build:
        env["CHARTREUSE_BUILD"] = "1"
    if path is not None:
        env["PATH"] = path
    env.update(extra or {})
    return subprocess.run(["bash", str(plugin / "install-binary.sh")], capture_output=True,
                          text=True, env=env, timeout=120)


def version_of(plugin):
    return subprocess.run([str(plugin / "bin" / "chartreuse"), "version"], capture_output=True,
                          text=True, timeout=30).stdout.strip()


def no_leftovers(plugin):
    assert not list(plugin.glob(".install.*")), "the staging directory was left behind"


def one_error_line(p):
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert p.returncode == 1, p.stdout + p.stderr
    assert len(lines) == 1, p.stderr
    return lines[0]


def put_old_binary(plugin):
    (plugin / "bin").mkdir()
    old = plugin / "bin" / "chartreuse"
    old.write_text(f"#!/bin/sh\necho {OLD}\n")
    old.chmod(0o755)


def test_good_release_installed_with_curl(plugin, server):
    p = hook(plugin, PATTERN.format(port=server, layout="good"))
    assert p.returncode == 0, p.stderr
    assert version_of(plugin) == f"chartreuse {VERSION}"
    assert (plugin / "bin" / "chartreuse").read_bytes() == Path(BIN).resolve().read_bytes()
    assert (plugin / "lib" / "libexample.so.1").read_bytes() == b"not really a library"
    assert f"installed {plugin}/bin/chartreuse {VERSION} (linux/amd64)" in p.stdout
    # The Helm 4 post-renderer link, as after a build.
    link = plugin / "plugins" / "chartreuse-post-render" / "bin" / "chartreuse-post-render"
    assert os.readlink(link) == "../../../bin/chartreuse" and link.resolve().is_file()
    no_leftovers(plugin)


def test_good_release_installed_with_wget_only(plugin, server, tmp_path):
    path = tools_path(tmp_path, drop={"curl"})
    p = hook(plugin, PATTERN.format(port=server, layout="good"), path=path)
    assert p.returncode == 0, p.stderr
    assert version_of(plugin) == f"chartreuse {VERSION}"
    no_leftovers(plugin)


def test_arm64_machine_fetches_the_arm64_asset(plugin, server, tmp_path):
    path = tools_path(tmp_path, stubs={"uname": 'case "$1" in -s) echo Linux ;; -m) echo aarch64 ;; *) exec /bin/uname "$@" ;; esac\n'})
    p = hook(plugin, PATTERN.format(port=server, layout="good"), path=path)
    assert p.returncode == 0, p.stderr
    assert f"({'linux/arm64'}) from http://127.0.0.1:{server}/good/v{VERSION}/" \
           f"chartreuse_{VERSION}_linux_arm64.tar.gz" in p.stdout


@pytest.mark.parametrize("drop", [set(), {"curl"}], ids=["curl", "wget"])
def test_corrupt_asset_is_an_error_and_keeps_the_old_binary(plugin, server, tmp_path, drop):
    put_old_binary(plugin)
    p = hook(plugin, PATTERN.format(port=server, layout="corrupt"), path=tools_path(tmp_path, drop))
    line = one_error_line(p)
    assert f"http://127.0.0.1:{server}/corrupt/v{VERSION}/{ASSET} does not match its sha256" in line
    assert "nothing was installed" in line and "CHARTREUSE_BUILD=1" in line
    assert version_of(plugin) == OLD
    assert not (plugin / "lib").exists()
    no_leftovers(plugin)


@pytest.mark.parametrize("layout,why", [
    ("missing-asset", f"{ASSET[:-7]}"),   # checksums name it, the asset is a 404
    ("no-entry", "not in checksums.txt"),
    ("no-release", "HTTP 404 for checksums.txt"),
    ("not-running", "does not run here"),
])
def test_no_prebuilt_binary_falls_back_to_the_build(plugin, server, layout, why):
    p = hook(plugin, PATTERN.format(port=server, layout=layout))
    assert p.returncode == 0, p.stderr
    assert why in p.stdout and "building from source" in p.stdout, p.stdout
    assert f"building bin/chartreuse in {plugin}" in p.stdout
    assert version_of(plugin) == BUILT
    no_leftovers(plugin)


def test_chartreuse_build_builds_even_when_a_release_exists(plugin, server):
    p = hook(plugin, PATTERN.format(port=server, layout="good"), build=True)
    assert p.returncode == 0, p.stderr
    assert version_of(plugin) == BUILT and "installed" not in p.stdout


@pytest.mark.parametrize("drop", [set(), {"curl"}], ids=["curl", "wget"])
def test_unreachable_server_is_an_error(plugin, tmp_path, drop):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    put_old_binary(plugin)
    p = hook(plugin, PATTERN.format(port=port, layout="good"), path=tools_path(tmp_path, drop))
    line = one_error_line(p)
    assert line.startswith(f"chartreuse: cannot download http://127.0.0.1:{port}/good/v{VERSION}/checksums.txt: ")
    assert "check the network or CHARTREUSE_RELEASE_URL" in line and "nothing was installed" in line
    assert version_of(plugin) == OLD
    no_leftovers(plugin)


@pytest.mark.parametrize("drop", [set(), {"curl"}], ids=["curl", "wget"])
def test_server_error_is_an_error_not_a_fallback(plugin, server, tmp_path, drop):
    p = hook(plugin, PATTERN.format(port=server, layout="error"), path=tools_path(tmp_path, drop))
    line = one_error_line(p)
    assert f"cannot download http://127.0.0.1:{server}/error/v{VERSION}/checksums.txt: HTTP 503" in line
    assert not (plugin / "bin").exists()
    no_leftovers(plugin)


def test_release_url_is_data_not_shell(plugin, tmp_path):
    marker = tmp_path / "pwned"
    url = f"http://127.0.0.1:1/$(touch {marker})/`touch {marker}`/{{version}}/x_{{os}}_{{arch}}.tar.gz"
    p = hook(plugin, url)
    assert p.returncode == 1
    assert not marker.exists()
    assert f"$(touch {marker})" in p.stderr


def test_missing_build_dependencies_named_for_each_system(plugin, tmp_path):
    path = tools_path(tmp_path, drop={"make", "cc", "gcc", "pkg-config", "x86_64-linux-gnu-pkg-config"})
    p = hook(plugin, path=path, build=True)
    assert p.returncode == 1
    err = p.stderr
    assert "chartreuse: cannot build from source; missing: make, a C compiler (cc), pkg-config" in err
    assert "  Debian/Ubuntu:    sudo apt-get install make gcc pkg-config\n" in err
    assert "  Fedora/RHEL:      sudo dnf install make gcc pkgconf-pkg-config " in err
    assert "  macOS (Homebrew): brew install make pkgconf\n" in err
    assert "  macOS C compiler: xcode-select --install" in err
    assert f"then finish the installation with: {plugin}/install-binary.sh" in err
    assert not (plugin / "bin").exists()


def test_install_hook_passes_shellcheck():
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is not installed (scripts/setup.sh installs it)")
    p = subprocess.run(["shellcheck", str(REPO / "install-binary.sh")], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stdout


@pytest.mark.helm
@pytest.mark.parametrize("major", [3, 4], ids=["helm3", "helm4"])
def test_helm_plugin_install_downloads_the_release(plugin, server, tmp_path, major):
    """`helm plugin install` runs the hook, which downloads, verifies and links the binary:
    `helm chartreuse version` then runs the downloaded one."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CHARTREUSE_BUILD", "HELM_PLUGINS", "HELM_BIN")}
    for var in ("HELM_DATA_HOME", "HELM_CONFIG_HOME", "HELM_CACHE_HOME"):
        env[var] = str(tmp_path / var.lower())
    env["CHARTREUSE_RELEASE_URL"] = PATTERN.format(port=server, layout="good")
    helm = helm_path(major)
    p = subprocess.run([helm, "plugin", "install", str(plugin)], capture_output=True,
                       text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    # HELM_PLUGIN_DIR is the plugin's path under Helm's plugins directory.
    assert f"/chartreuse/bin/chartreuse {VERSION} (linux/amd64) from http://127.0.0.1:" \
        in p.stdout + p.stderr
    assert "building" not in p.stdout + p.stderr
    p = subprocess.run([helm, "chartreuse", "version"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == f"chartreuse {VERSION}", p.stderr
    if major == 4:
        p = subprocess.run([helm, "plugin", "list"], capture_output=True, text=True, env=env)
        assert "chartreuse-post-render" in p.stdout
