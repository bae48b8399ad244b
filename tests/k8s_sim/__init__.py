"""A simulated Kubernetes API server for the tests (no real cluster can run here).

    from k8s_sim import K8sSim
    with K8sSim() as sim:
        sim.kubeconfig(tmp / "kubeconfig")      # for kubectl, Helm or chartreuse
        sim.put(deployment_dict)                # Pods appear after sim.pod_start_delay
        sim.fault("PATCH", r"/scale$", status=500, times=2)
        ... run the client ...
        [str(r) for r in sim.request_log]

Layout: server.py (HTTP, auth, faults, request log, the K8sSim object), api.py (verbs and
their semantics), store.py (objects, resourceVersions, change history), watch.py (watch
streams), controller.py (Deployment/ReplicaSet and Job controllers, kubelet, garbage
collector, PDB status, optional HPA), discovery.py (resource registry, discovery and OpenAPI
documents), tables.py (server-side printing for kubectl), patch.py (merge/strategic/JSON
patch and server-side apply), validation.py (unknown fields, fieldValidation), protobuf.py
(protobuf request bodies), selectors.py (label and field selectors), certs.py (openssl CA),
jobrunner.py (a kubelet_hook that runs Job Pods' containers as local processes).
Standard library plus PyYAML only.
"""
from .api import ApiError, Ctx
from .server import Fault, K8sSim, RequestLog, RequestRecord

__all__ = ["K8sSim", "ApiError", "Ctx", "Fault", "RequestLog", "RequestRecord"]
