#!/usr/bin/env bash
# The README's demo: install chartreuse as a Helm plugin from this checkout and render the
# example chart (examples/chart/demo) through it, with the real Helm 3 and Helm 4, in
# temporary Helm homes (your own ~/.local/share/helm etc. are not touched). No cluster is
# needed: everything goes through `helm template`. Then `chartreuse migrate` runs the
# example Alembic project against a throwaway local PostgreSQL, twice.
#
#   make demo            (or: bash scripts/demo.sh)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
PY=/usr/bin/python3
chart=examples/chart/demo
release=demo
namespace=demo
bin=$repo/bin/chartreuse

tmp=$(mktemp -d "${TMPDIR:-/tmp}/chartreuse-demo.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

section() { printf '\n==== %s ====\n' "$*"; }
run() { # show a command, then run it
    printf '$ %s\n' "$*"
    "$@"
}
run_helm() { # run_helm <major> <args...>: show it as `helm <args>`, then run it
    printf '$ helm %s\n' "${*:2}"
    helm "$@"
}

# helm <major> <args...>: that Helm with its own temporary homes, and none of the caller's
# Helm settings that could point it elsewhere.
helm() {
    local major=$1 home=$tmp/helm$1
    shift
    mkdir -p "$home/data" "$home/config" "$home/cache"
    env -u HELM_PLUGINS -u HELM_BIN -u HELM_NAMESPACE -u HELM_DRIVER \
        HELM_DATA_HOME="$home/data" HELM_CONFIG_HOME="$home/config" \
        HELM_CACHE_HOME="$home/cache" \
        "$repo/.cache/helm/v$major/helm" "$@"
}

# summary <file>: the documents chartreuse injected (label app.kubernetes.io/name:
# chartreuse), one line each, with the hook annotations and, for the Jobs, the containers.
summary() {
    "$PY" - "$1" <<'EOF'
import sys
import yaml

with open(sys.argv[1]) as f:
    docs = [d for d in yaml.safe_load_all(f) if isinstance(d, dict)]
mine = [d for d in docs
        if (d.get("metadata", {}).get("labels") or {}).get("app.kubernetes.io/name") == "chartreuse"]
print(f"{len(docs)} documents, {len(mine)} injected by chartreuse, "
      f"ChartreuseConfig left in the output: {any(d.get('kind') == 'ChartreuseConfig' for d in docs)}")
for d in mine:
    md = d["metadata"]
    ann = md.get("annotations") or {}
    hook = ann.get("helm.sh/hook") or ann.get("argocd.argoproj.io/hook", "-")
    weight = ann.get("helm.sh/hook-weight") or ann.get("argocd.argoproj.io/sync-wave", "-")
    print(f"  {d['kind'] + '/' + md['name']:<40} hook={hook:<38} weight={weight}")
    if d["kind"] != "Job":
        continue
    policy = ann.get("helm.sh/hook-delete-policy") or ann.get("argocd.argoproj.io/hook-delete-policy")
    print(f"      delete-policy={policy}")
    pod = d["spec"]["template"]["spec"]
    for kind in ("initContainers", "containers"):
        for c in pod.get(kind) or []:
            cmd = " ".join(c.get("command", []) + c.get("args", []))
            print(f"      {kind[:-1]:<13} {c['name']:<22} {c['image']}: {cmd}")
EOF
}

# render <major> <title> <helm args...>: run, print the whole output, then the summary.
render() {
    local major=$1 title=$2 out=$tmp/out.yaml
    shift 2
    section "$title"
    printf '$ helm %s\n\n' "$*"
    helm "$major" "$@" >"$out"
    cat "$out"
    section "$title: what chartreuse injected"
    summary "$out"
}

section "Build and fetch Helm"
# The demo shows this checkout's build: the install hook uses it instead of a release download.
export CHARTREUSE_BUILD=1
run make -s bin/chartreuse
bin/chartreuse version
# get-helm.sh prints the two paths on stdout and its progress on stderr.
bash scripts/get-helm.sh >/dev/null

section "Helm $(helm 3 version --template '{{.Version}}'): install the plugin from $repo"
run_helm 3 plugin install "$repo"
run_helm 3 plugin list

render 3 "Helm 3, after-deployment mode (default)" \
    chartreuse template "$release" "$chart" --namespace "$namespace"

render 3 "Helm 3, before-deployment mode (values-before.yaml: upgradeBeforeDeployment: true)" \
    chartreuse template "$release" "$chart" --namespace "$namespace" \
    -f "$chart/values-before.yaml"

section "Helm $(helm 4 version --template '{{.Version}}'): install the plugin from $repo (separate homes)"
run_helm 4 plugin install "$repo"
run_helm 4 plugin list

render 4 "Helm 4, after-deployment mode, plain --post-renderer chartreuse-post-render" \
    template "$release" "$chart" --namespace "$namespace" \
    --post-renderer chartreuse-post-render \
    --post-renderer-args "--release=$release" --post-renderer-args "--namespace=$namespace"

section "Migration: chartreuse migrate on examples/alembic against a local PostgreSQL"
# The command the Job runs, here from the workstation side: stopPods is off because there
# is no cluster; the database is a throwaway PostgreSQL 15 on a private port.
chmod 755 "$tmp"
port=$(bash "$repo/scripts/pg-local.sh" start "$tmp/pg")
trap 'bash "$repo/scripts/pg-local.sh" stop "$tmp/pg"; rm -rf "$tmp"' EXIT
psql -q -h 127.0.0.1 -p "$port" -U postgres -c "CREATE ROLE demo LOGIN PASSWORD 'demo: p@ss#word'" \
  -c "CREATE DATABASE demo OWNER demo"
cat > "$tmp/migrate.yaml" <<YAML
release: $release
stopPods: false
databases:
  - name: main
    host: 127.0.0.1
    port: $port
    user: demo
    password: "demo: p@ss#word"
    database: demo
    alembicDirectory: $repo/examples/alembic
YAML
echo "--- first run: a fresh database, every revision is applied"
"$bin" migrate --config "$tmp/migrate.yaml"
echo "--- second run: nothing left to apply, Alembic is not started"
"$bin" migrate --config "$tmp/migrate.yaml"
echo "--- the decision alone (--dry-run)"
"$bin" migrate --config "$tmp/migrate.yaml" --dry-run
psql -q -h 127.0.0.1 -p "$port" -U postgres -d demo -c '\dt public.*' 
