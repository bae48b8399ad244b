"""The Kubernetes objects the tests put into the simulator for a release: Deployments, their
ExpectedDeploymentScales and HPAs. A test module binds its release once:
    deployment = partial(k8s_objects.deployment, release=RELEASE)"""


def deployment(name, replicas, release, annotations=None):
    """Pods selected by app=<name>; annotations (when given) on the Deployment and its Pod
    template, where the simulator reads its per-object delays."""
    meta = {"name": name, "namespace": "default",
            "labels": {"app.kubernetes.io/instance": release}}
    template_meta = {"labels": {"app": name}}
    if annotations is not None:
        meta["annotations"] = annotations
        template_meta["annotations"] = annotations
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": template_meta,
                                  "spec": {"containers": [{"name": name, "image": "app:1"}]}}}}


def eds(name, scale, release, priority=0, label="app.kubernetes.io/instance", deployment=None):
    return {"apiVersion": "wiremind.io/v1", "kind": "ExpectedDeploymentScale",
            "metadata": {"name": name, "namespace": "default", "labels": {label: release}},
            "spec": {"deploymentName": deployment or name, "expectedScale": scale,
                     "priority": priority}}


def hpa(target, behavior=None, name=None):
    spec = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": 1, "maxReplicas": 5}
    if behavior is not None:
        spec["behavior"] = behavior
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name or target, "namespace": "default"}, "spec": spec}
