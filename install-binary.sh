#!/usr/bin/env bash
# Helm install/update hook of the `chartreuse` plugin (also fine to run by hand):
# build bin/chartreuse from source, then under Helm 4 install the companion post-renderer
# plugin plugins/chartreuse-post-render (Helm 4's --post-renderer takes a plugin name only).
set -euo pipefail

dir=${HELM_PLUGIN_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
say() { echo "chartreuse: $*"; }

# --- build dependencies ------------------------------------------------------------------
have() { command -v "$1" >/dev/null 2>&1; }
has_pc() { # has_pc <module>: without pkg-config, look for the .pc file itself
    if have pkg-config; then pkg-config --exists "$1"; return; fi
    local f
    for f in /usr/lib/pkgconfig /usr/lib/*/pkgconfig /usr/share/pkgconfig \
             /usr/local/lib/pkgconfig /usr/local/lib/*/pkgconfig /usr/local/share/pkgconfig; do
        [[ -e $f/$1.pc ]] && return 0
    done
    return 1
}
missing=()
need() { # need <what> <apt package>
    say "missing $1 (Debian/Ubuntu package: $2)" >&2
    missing+=("$2")
}
have make       || need "make" make
have cc         || need "a C compiler (cc)" gcc
have pkg-config || need "pkg-config" pkg-config
has_pc libfyaml || need "libfyaml (pkg-config libfyaml)" libfyaml-dev
has_pc yaml-0.1 || need "libyaml (pkg-config yaml-0.1)" libyaml-dev
has_pc libcurl  || need "libcurl (pkg-config libcurl)" libcurl4-openssl-dev
has_pc libpq    || need "libpq (pkg-config libpq)" libpq-dev
if ((${#missing[@]})); then
    say "cannot build; install the build dependencies:" >&2
    echo "  apt-get install ${missing[*]}" >&2
    # Helm keeps the plugin even though its hook failed, so a second install would fail.
    say "then finish the installation with: $dir/install-binary.sh" >&2
    exit 1
fi

# --- build -----------------------------------------------------------------------------------
say "building bin/chartreuse in $dir"
make -s -C "$dir" BIN=bin/chartreuse bin/chartreuse
"$dir/bin/chartreuse" version >/dev/null || { say "built $dir/bin/chartreuse does not run" >&2; exit 1; }

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
