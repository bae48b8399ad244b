#!/usr/bin/env bash
# Helm install/update hook of the `chartreuse` plugin (also fine to run by hand):
# install bin/chartreuse, then under Helm 4 install the companion post-renderer plugin
# plugins/chartreuse-post-render (Helm 4's --post-renderer takes a plugin name only).
#
# bin/chartreuse comes from the project's release for this plugin's version and the
# machine's OS/architecture, checked against the release's checksums.txt. Only when the
# release has no binary for them (HTTP 404, or no checksums entry), or CHARTREUSE_BUILD=1,
# is it built from source. A download that fails or does not verify is an error, and
# leaves the plugin as it was.
set -euo pipefail

dir=${HELM_PLUGIN_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
say() { echo "chartreuse: $*"; }
die() { echo "chartreuse: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# Where releases are: {version}, {os} and {arch} are replaced (never evaluated by a shell);
# checksums.txt is beside the asset. CHARTREUSE_RELEASE_URL points at a mirror.
RELEASE_URL='https://github.com/wiremind/chartreuse/releases/download/v{version}/chartreuse_{version}_{os}_{arch}.tar.gz'
url_pattern=${CHARTREUSE_RELEASE_URL:-$RELEASE_URL}

stage=
trap 'if [[ -n $stage ]]; then rm -rf "$stage"; fi' EXIT

# --- prebuilt binary ------------------------------------------------------------------------
fetch_error=
fetch() { # fetch <url> <file>: 0 done, 4 not found (HTTP 404), 1 failed (fetch_error says why)
    local code rc=0 err=$stage/fetch.err
    if have curl; then
        code=$(curl -sS -L --connect-timeout 15 --retry 2 -o "$2" -w '%{http_code}' -- "$1" 2>"$err") || rc=$?
        if [[ $code == 404 ]]; then return 4; fi
        if ((rc)); then fetch_error=$(tail -n 1 "$err"); return 1; fi
        # file:// and other non-HTTP mirrors answer 000 on success.
        if [[ $code != 2?? && $code != 000 ]]; then fetch_error="HTTP $code"; return 1; fi
        return 0
    fi
    if have wget; then
        wget -q -S -T 15 -O "$2" -- "$1" 2>"$err" && return 0
        rc=$?
        code=$(awk '$1 ~ /^HTTP\// { s = $2 } END { print s }' "$err")
        if [[ $code == 404 ]]; then return 4; fi
        fetch_error=${code:+HTTP $code}
        fetch_error=${fetch_error:-$(tail -n 1 "$err") (wget exit status $rc)}
        return 1
    fi
    fetch_error="neither curl nor wget is installed"
    return 1
}

sha256() {
    if have sha256sum; then sha256sum -- "$1" | awk '{ print $1 }'
    elif have shasum; then shasum -a 256 -- "$1" | awk '{ print $1 }'
    else die "cannot verify the download: neither sha256sum nor shasum is installed; install coreutils (or perl's shasum), or build from source with CHARTREUSE_BUILD=1"
    fi
}

# prebuilt: 0 installed, 2 nothing to download for this machine (build instead); exits on error.
prebuilt() {
    local version os arch asset url sums want got
    version=$(sed -n 's/^version:[[:space:]]*"\{0,1\}\([^"[:space:]]*\)"\{0,1\}.*/\1/p' "$dir/plugin.yaml")
    [[ $version =~ ^[0-9A-Za-z.+-]+$ ]] || die "$dir/plugin.yaml: no usable version ('$version'); reinstall the plugin"
    case $(uname -s) in Linux) os=linux ;; Darwin) os=darwin ;; *) os= ;; esac
    case $(uname -m) in x86_64|amd64) arch=amd64 ;; aarch64|arm64) arch=arm64 ;; *) arch= ;; esac
    if [[ -z $os || -z $arch ]]; then
        say "no prebuilt binaries for $(uname -s)/$(uname -m); building from source"
        return 2
    fi
    url=${url_pattern//\{version\}/$version}
    url=${url//\{os\}/$os}
    url=${url//\{arch\}/$arch}
    asset=${url##*/}
    sums=${url%/*}/checksums.txt
    # In the plugin directory, so that the final moves are renames on one file system.
    stage=$(mktemp -d "$dir/.install.XXXXXX") || die "cannot create a temporary directory in $dir: check that it is writable"

    local rc=0
    fetch "$sums" "$stage/checksums.txt" || rc=$?
    case $rc in
        0) ;;
        4) say "no release v$version at ${sums%/*} (HTTP 404 for checksums.txt); building from source"; return 2 ;;
        *) die "cannot download $sums: $fetch_error; check the network or CHARTREUSE_RELEASE_URL, or build from source with CHARTREUSE_BUILD=1 (nothing was installed)" ;;
    esac
    want=$(awk -v f="$asset" '$2 == f || $2 == "*" f { print $1; exit }' "$stage/checksums.txt")
    if [[ -z $want ]]; then
        say "release v$version has no binary for $os/$arch ($asset not in checksums.txt); building from source"
        return 2
    fi
    rc=0
    fetch "$url" "$stage/$asset" || rc=$?
    case $rc in
        0) ;;
        4) say "release v$version has no binary for $os/$arch ($url: HTTP 404); building from source"; return 2 ;;
        *) die "cannot download $url: $fetch_error; check the network or CHARTREUSE_RELEASE_URL, or build from source with CHARTREUSE_BUILD=1 (nothing was installed)" ;;
    esac
    got=$(sha256 "$stage/$asset")
    [[ $got == "$want" ]] || die "$url does not match its sha256 in checksums.txt (got $got, expected $want): the download is damaged or not the published one; nothing was installed; retry, or build from source with CHARTREUSE_BUILD=1"

    # Called from an `||` list, where bash ignores `set -e`: each step is checked.
    mkdir "$stage/tree" || die "cannot write to $stage"
    tar -xzf "$stage/$asset" -C "$stage/tree" 2>"$stage/tar.err" ||
        die "$url: cannot unpack: $(tail -n 1 "$stage/tar.err"); nothing was installed"
    [[ -f $stage/tree/bin/chartreuse && ! -L $stage/tree/bin/chartreuse ]] ||
        die "$url holds no bin/chartreuse; nothing was installed; build from source with CHARTREUSE_BUILD=1"
    if ! out=$("$stage/tree/bin/chartreuse" version 2>&1); then
        say "the prebuilt binary does not run here (${out##*$'\n'}); building from source"
        return 2
    fi
    # Libraries first, the binary last: each a rename, so bin/chartreuse is always whole.
    local d f
    mkdir -p "$dir/bin" || die "cannot create $dir/bin"
    for d in lib etc; do
        [[ -d $stage/tree/$d ]] || continue
        mkdir -p "$dir/$d" || die "cannot create $dir/$d"
        for f in "$stage/tree/$d"/*; do
            [[ -e $f ]] || continue
            mv -f -- "$f" "$dir/$d/" || die "cannot move $f into $dir/$d"
        done
    done
    mv -f -- "$stage/tree/bin/chartreuse" "$dir/bin/chartreuse" || die "cannot install $dir/bin/chartreuse"
    say "installed $dir/bin/chartreuse $version ($os/$arch) from $url"
}

# --- build from source --------------------------------------------------------------------------
has_pc() { # has_pc <module>: without pkg-config, look for the .pc file itself
    if have pkg-config; then pkg-config --exists "$1"; return; fi
    local f
    for f in /usr/lib/pkgconfig /usr/lib/*/pkgconfig /usr/lib64/pkgconfig /usr/share/pkgconfig \
             /usr/local/lib/pkgconfig /usr/local/lib/*/pkgconfig /usr/local/share/pkgconfig \
             /opt/homebrew/lib/pkgconfig; do
        [[ -e $f/$1.pc ]] && return 0
    done
    return 1
}

build() {
    local missing=() apt=() dnf=() brew=()
    need() { # need <what> <apt package> <dnf package> <brew formula, or - for none>
        missing+=("$1"); apt+=("$2"); dnf+=("$3")
        [[ $4 == - ]] || brew+=("$4")
    }
    have make       || need "make" make make make
    have cc         || need "a C compiler (cc)" gcc gcc -
    have pkg-config || need "pkg-config" pkg-config pkgconf-pkg-config pkgconf
    has_pc libfyaml || need "libfyaml (pkg-config libfyaml)" libfyaml-dev libfyaml-devel libfyaml
    has_pc yaml-0.1 || need "libyaml (pkg-config yaml-0.1)" libyaml-dev libyaml-devel libyaml
    has_pc libcurl  || need "libcurl (pkg-config libcurl)" libcurl4-openssl-dev libcurl-devel curl
    has_pc libpq    || need "libpq (pkg-config libpq)" libpq-dev libpq-devel libpq
    if ((${#missing[@]})); then
        local list
        list=$(printf ', %s' "${missing[@]}")
        say "cannot build from source; missing: ${list#, }" >&2
        say "install them with the line for your system:" >&2
        echo "  Debian/Ubuntu:    sudo apt-get install ${apt[*]}" >&2
        echo "  Fedora/RHEL:      sudo dnf install ${dnf[*]}   (RHEL: libfyaml-devel is in EPEL)" >&2
        if ((${#brew[@]})); then
            echo "  macOS (Homebrew): brew install ${brew[*]}" >&2
        fi
        if [[ " ${missing[*]} " == *" a C compiler "* ]]; then
            echo "  macOS C compiler: xcode-select --install" >&2
        fi
        # Helm keeps the plugin even though its hook failed, so a second install would fail.
        say "then finish the installation with: $dir/install-binary.sh" >&2
        exit 1
    fi
    say "building bin/chartreuse in $dir"
    make -s -C "$dir" BIN=bin/chartreuse bin/chartreuse
    "$dir/bin/chartreuse" version >/dev/null || die "built $dir/bin/chartreuse does not run"
}

if [[ ${CHARTREUSE_BUILD:-} == 1 ]]; then
    build
else
    rc=0
    prebuilt || rc=$?
    if ((rc == 2)); then build; fi
fi

# Relative link: it resolves physically, so it works when Helm installs a local directory
# (a symlink into the source tree), for a git clone, and after the tree is moved.
mkdir -p "$dir/plugins/chartreuse-post-render/bin"
ln -sfn ../../../bin/chartreuse "$dir/plugins/chartreuse-post-render/bin/chartreuse-post-render"

# --- which Helm runs us ----------------------------------------------------------------------
# Helm 3 sets HELM_BIN for hooks, Helm 4.1 does not. Both run a hook as `sh -c <hook>`, so
# the Helm process is the nearest ancestor that is not a shell.
helm=
if [[ -n ${HELM_PLUGIN_DIR:-} && -r /proc/$$/status ]]; then
    pid=$PPID
    while ((pid > 1)); do
        exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || break
        case ${exe##*/} in
            sh|dash|bash|zsh|ash|ksh|mksh|busybox) pid=$(awk '/^PPid:/ {print $2}' "/proc/$pid/status") ;;
            *) helm=$exe; break ;;
        esac
    done
fi
helm=${helm:-${HELM_BIN:-helm}}
version=$("$helm" version --template '{{.Version}}' 2>/dev/null) || version=
major=${version#v}
major=${major%%.*}

# --- Helm 4: the post-renderer plugin ----------------------------------------------------------
if [[ $major != 4 ]]; then
    say "Helm ${version:-not found}; Helm 3 post-renders with:"
    say "  --post-renderer \"$dir/bin/chartreuse\" --post-renderer-args post-render"
    [[ -n $version ]] || say "Helm 4 needs: helm plugin install \"$dir/plugins/chartreuse-post-render\""
    exit 0
fi
src=$(cd "$dir/plugins/chartreuse-post-render" && pwd -P)
# Helm 4.1 installs into $HELM_DATA_HOME/plugins whatever HELM_PLUGINS says.
dst=$("$helm" env HELM_DATA_HOME)/plugins/chartreuse-post-render
# A link left by an earlier install from another place (possibly dangling) blocks
# `helm plugin install` ("file exists") and `helm plugin uninstall` cannot remove it.
if [[ -L $dst && $(readlink -f "$dst") != "$src" ]]; then
    rm -f "$dst"
fi
if [[ -e $dst ]]; then
    say "post-renderer plugin chartreuse-post-render already installed"
elif out=$("$helm" plugin install "$src" 2>&1); then
    say "${out##*$'\n'}"
else
    case $out in
        *"already exists"*) say "post-renderer plugin chartreuse-post-render already installed" ;;
        *) echo "$out" >&2; exit 1 ;;
    esac
fi
say "Helm 4: post-render with --post-renderer chartreuse-post-render"
say "note: Helm 3.17 sharing ${dst%/*} fails to load every plugin while this Helm 4 one is there"
