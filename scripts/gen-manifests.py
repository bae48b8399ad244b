#!/usr/bin/python3
"""Write a realistic Helm-rendered manifest stream of N resources to stdout.

    scripts/gen-manifests.py N [--seed S] [--no-config]

The stream looks like `helm template demo <chart> -n demo` output: every document starts
with `---` and a `# Source: demo/templates/<file>.yaml` comment, carries the label
`app.kubernetes.io/instance: demo` and `metadata.namespace: demo`. The mix is mostly small
objects (ServiceAccounts, Services, ConfigMaps, Secrets) with some Deployments (containers,
env, probes, resources), Ingresses, PodDisruptionBudgets and HorizontalPodAutoscalers, and
averages about 0.38 KB per resource (SPEC §4: 2,000 resources ~ 0.76 MB).

The output is deterministic for a given N and seed (default 42). Names are unique per kind,
so tools that index objects by kind/namespace/name (kustomize) accept the stream.
Unless --no-config is given, the stream ends with a ChartreuseConfig document, so that
`chartreuse post-render` needs no other configuration.

Standard library only; meant for Debian's /usr/bin/python3.
"""

import argparse
import base64
import random
import sys

RELEASE = "demo"
NAMESPACE = "demo"

COMPONENTS = [
    "api", "web", "worker", "scheduler", "billing", "search", "auth", "notifier",
    "gateway", "reports", "ingest", "export", "pricing", "catalog", "cache", "admin",
]
IMAGES = ["registry.example.com/app", "registry.example.com/web", "registry.example.com/worker"]
ENV_NAMES = [
    "LOG_LEVEL", "DJANGO_SETTINGS_MODULE", "WORKERS", "TIMEOUT", "SENTRY_ENVIRONMENT",
    "FEATURE_FLAGS", "CACHE_TTL", "REDIS_HOST", "QUEUE_NAME", "TZ",
]
ENV_VALUES = ["info", "debug", "app.settings.production", "4", "30", "production", "300",
              "redis-master", "default", "UTC", "a,b,c"]
CONF_LINES = [
    "log_level = info", "workers = 4", "timeout = 30", "listen = 0.0.0.0:8080",
    "cache_ttl = 300", "max_body = 10m", "retries = 3", "pool_size = 10",
    "keepalive = 65", "gzip = on",
]

# kind -> (template file, weight). Weights are tuned so the mean size is ~0.38 KB.
KINDS = [
    ("ServiceAccount", "serviceaccount", 46),
    ("Service", "service", 20),
    ("ConfigMap", "configmap", 18),
    ("Secret", "secret", 14),
    ("Deployment", "deployment", 4),
    ("Ingress", "ingress", 4),
    ("PodDisruptionBudget", "pdb", 4),
    ("HorizontalPodAutoscaler", "hpa", 4),
]


def labels(name, indent):
    pad = " " * indent
    return (
        f"{pad}labels:\n"
        f"{pad}  app.kubernetes.io/name: {name}\n"
        f"{pad}  app.kubernetes.io/instance: {RELEASE}\n"
        f"{pad}  app.kubernetes.io/managed-by: Helm\n"
    )


def head(api, kind, name):
    return (
        f"apiVersion: {api}\n"
        f"kind: {kind}\n"
        f"metadata:\n"
        f"  name: {name}\n"
        f"  namespace: {NAMESPACE}\n"
        + labels(name, 2)
    )


def selector(name, indent):
    pad = " " * indent
    return (
        f"{pad}  app.kubernetes.io/name: {name}\n"
        f"{pad}  app.kubernetes.io/instance: {RELEASE}\n"
    )


def service_account(rng, name):
    out = head("v1", "ServiceAccount", name)
    if rng.random() < 0.3:
        out += "automountServiceAccountToken: false\n"
    return out


def service(rng, name):
    port = rng.choice([80, 8080, 8000, 9000])
    return (
        head("v1", "Service", name)
        + "spec:\n"
        + f"  type: {rng.choice(['ClusterIP', 'ClusterIP', 'ClusterIP', 'NodePort'])}\n"
        + "  ports:\n"
        + f"    - port: {port}\n"
        + "      targetPort: http\n"
        + "      name: http\n"
        + "  selector:\n"
        + selector(name, 2)
    )


def config_map(rng, name):
    out = head("v1", "ConfigMap", name) + "data:\n"
    out += f"  LOG_LEVEL: \"{rng.choice(['info', 'debug', 'warning'])}\"\n"
    out += "  app.conf: |\n"
    for line in rng.sample(CONF_LINES, rng.randint(1, 4)):
        out += f"    {line}\n"
    return out


def secret(rng, name):
    out = head("v1", "Secret", name) + "type: Opaque\ndata:\n"
    for key in rng.sample(["password", "api-key", "token", "dsn"], rng.choice([1, 1, 2])):
        raw = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(24))
        out += f"  {key}: {base64.b64encode(raw.encode()).decode()}\n"
    return out


def deployment(rng, name):
    image = rng.choice(IMAGES)
    tag = f"1.{rng.randint(0, 40)}.{rng.randint(0, 9)}"
    port = rng.choice([8080, 8000, 9000])
    out = head("apps/v1", "Deployment", name)
    out += (
        "spec:\n"
        f"  replicas: {rng.randint(1, 4)}\n"
        "  selector:\n"
        "    matchLabels:\n"
        + selector(name, 4)
        + "  template:\n"
        "    metadata:\n"
        + labels(name, 6)
        + "    spec:\n"
        f"      serviceAccountName: {name}\n"
        "      containers:\n"
        f"        - name: {name.rsplit('-', 1)[0].split('-', 1)[1]}\n"
        f"          image: \"{image}:{tag}\"\n"
        "          imagePullPolicy: IfNotPresent\n"
        "          ports:\n"
        "            - name: http\n"
        f"              containerPort: {port}\n"
        "              protocol: TCP\n"
        "          env:\n"
    )
    for env in rng.sample(ENV_NAMES, rng.randint(1, 4)):
        out += f"            - name: {env}\n              value: \"{rng.choice(ENV_VALUES)}\"\n"
    out += (
        "          livenessProbe:\n"
        "            httpGet:\n"
        "              path: /healthz\n"
        "              port: http\n"
        "          readinessProbe:\n"
        "            httpGet:\n"
        "              path: /ready\n"
        "              port: http\n"
        "          resources:\n"
        "            limits:\n"
        f"              memory: {rng.choice([256, 512, 1024])}Mi\n"
        "            requests:\n"
        f"              cpu: {rng.choice([50, 100, 250])}m\n"
        f"              memory: {rng.choice([128, 256])}Mi\n"
    )
    return out


def ingress(rng, name):
    host = f"{name}.example.com"
    return (
        head("networking.k8s.io/v1", "Ingress", name)
        + "spec:\n"
        "  ingressClassName: nginx\n"
        "  rules:\n"
        f"    - host: \"{host}\"\n"
        "      http:\n"
        "        paths:\n"
        "          - path: /\n"
        "            pathType: Prefix\n"
        "            backend:\n"
        "              service:\n"
        f"                name: {name}\n"
        "                port:\n"
        "                  name: http\n"
    )


def pdb(rng, name):
    return (
        head("policy/v1", "PodDisruptionBudget", name)
        + "spec:\n"
        f"  maxUnavailable: {rng.randint(1, 2)}\n"
        "  selector:\n"
        "    matchLabels:\n"
        + selector(name, 4)
    )


def hpa(rng, name):
    return (
        head("autoscaling/v2", "HorizontalPodAutoscaler", name)
        + "spec:\n"
        "  scaleTargetRef:\n"
        "    apiVersion: apps/v1\n"
        "    kind: Deployment\n"
        f"    name: {name}\n"
        f"  minReplicas: {rng.randint(1, 2)}\n"
        f"  maxReplicas: {rng.randint(3, 10)}\n"
        "  metrics:\n"
        "    - type: Resource\n"
        "      resource:\n"
        "        name: cpu\n"
        "        target:\n"
        "          type: Utilization\n"
        f"          averageUtilization: {rng.choice([60, 70, 80])}\n"
    )


BUILDERS = {
    "ServiceAccount": service_account, "Service": service, "ConfigMap": config_map,
    "Secret": secret, "Deployment": deployment, "Ingress": ingress,
    "PodDisruptionBudget": pdb, "HorizontalPodAutoscaler": hpa,
}

CONFIG = """---
# Source: demo/templates/chartreuse.yaml
apiVersion: chartreuse.wiremind.io/v1
kind: ChartreuseConfig
image: {repository: registry.example.com/app, tag: "1.0"}
databases:
  - {host: db, user: app, database: app}
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("n", type=int, help="number of resources")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-config", action="store_true",
                    help="leave out the trailing ChartreuseConfig document")
    args = ap.parse_args()
    if args.n < 0:
        ap.error("N must be >= 0")

    rng = random.Random(args.seed)
    kinds = [k for k, _, _ in KINDS]
    files = {k: f for k, f, _ in KINDS}
    weights = [w for _, _, w in KINDS]
    counters = {k: 0 for k in kinds}
    out = []
    for _ in range(args.n):
        kind = rng.choices(kinds, weights)[0]
        counters[kind] += 1
        # Unique per kind: component plus a per-kind running number.
        name = f"{RELEASE}-{rng.choice(COMPONENTS)}-{counters[kind]}"
        out.append(f"---\n# Source: demo/templates/{files[kind]}.yaml\n")
        out.append(BUILDERS[kind](rng, name))
    if not args.no_config:
        out.append(CONFIG)
    sys.stdout.write("".join(out))


if __name__ == "__main__":
    main()
