#!/usr/bin/env python3
"""Checks tools/deploy without a cluster or a container engine (the image
itself is built and run by tools/deploy/test-image.sh).

The manifests go through kubectl, offline:
  - `kubectl apply --dry-run=client --validate=false -f FILE`, each file
    alone, against a stand-in for an API server's discovery on 127.0.0.1
    (it lists the built-in kinds and knows no object, so every document is
    "created (dry run)"): the command a user runs, parsing every document;
  - every workload and Service through `kubectl set image|selector
    --local -o json`, which decode it into the API's own types (a wrong
    type or an unknown kind fails) and print it back: a field missing from
    what kubectl printed is one the API does not have (a typo).
The promises the README makes are then checked on kubectl's view: probes
on /__rewind/health, rewind non-root as the image's user, imagePullPolicy
IfNotPresent, the recording mounted read-only for replay, a volume per pod
for record (a claim writable by the pods' group (fsGroup), or an emptyDir
whose sizeLimit is above --max-db-bytes), a drain shorter than the grace
period, and each manifest self-contained (every Secret, claim and Service
it names is in the same file). A record sidecar beside another container
(k8s/sidecar.yaml) must never be what takes that service down: its
--backend is the pod's own, it runs with --fail-open, --max-db-bytes and a
memory limit of its own, the other containers' probes are on their own
ports, there are two replicas or more under a PodDisruptionBudget, and a
Service reaches the service's own port around rewind. The Dockerfile is multi-stage,
builds with tools/build.sh, installs the packages
tools/deploy/runtime-packages.sh derives, and runs as the user and group it
creates. Exit 0 when all holds."""
import http.server
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import threading

import yaml

HERE = pathlib.Path(__file__).resolve().parent
problems = []


def check(cond, what):
    if not cond:
        problems.append(what)
    return cond


def arg_after(args, flag):
    return args[args.index(flag) + 1] if flag in args else None


def rewind_size(text):
    """Bytes of a rewind size flag ("8G", "500MB": powers of 1024), or None."""
    m = re.fullmatch(r"(\d+)\s*([kmgtpe]?)(i?b?)", (text or "").strip().lower())
    if not m:
        return None
    return int(m.group(1)) * 1024 ** " kmgtpe".index(m.group(2) or " ")


def quantity(text):
    """Bytes of a Kubernetes quantity ("10Gi", "500M"), or None."""
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?", str(text or ""))
    if not m:
        return None
    unit = m.group(2) or ""
    factor = {"": 1, "k": 1000, "M": 1000 ** 2, "G": 1000 ** 3, "T": 1000 ** 4,
              "Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3, "Ti": 1024 ** 4}[unit]
    return int(m.group(1)) * factor


# --- the image's user -------------------------------------------------------------
docker = (HERE / "Dockerfile").read_text()
stages = re.findall(r"^FROM\s+(\S+)", docker, re.M)
check(len(stages) >= 2, "Dockerfile: not multi-stage")
check(all(s.startswith("debian:") for s in stages), "Dockerfile: not Debian-based")
check(re.search(r"^RUN (--mount=\S+\s+(\\\n\s*)?)*tools/build\.sh --release", docker, re.M),
      "Dockerfile: does not build with tools/build.sh --release")
check("tools/deploy/runtime-packages.sh" in docker and "$(cat /tmp/runtime-packages)" in docker,
      "Dockerfile: does not install the runtime packages runtime-packages.sh derives")
user = re.findall(r"^USER\s+(\d+):(\d+)\s*$", docker, re.M)
image_uid, image_gid = (int(user[-1][0]), int(user[-1][1])) if user else (None, None)
check(image_uid not in (None, 0), "Dockerfile: no numeric non-root USER uid:gid")
check(re.search(rf"groupadd\b[^\n]*--gid {image_gid}\b", docker) and
      re.search(rf"useradd\b[^\n]*--uid {image_uid}\b[^\n]*--gid {image_gid}\b", docker),
      f"Dockerfile: user {image_uid} and group {image_gid} are not both created")
dockerignore = (HERE.parent.parent / ".dockerignore").read_text().split()
check({".git", "build", "build-*"} <= set(dockerignore),
      ".dockerignore: does not keep .git and build output out")

# --- kubectl, offline ---------------------------------------------------------------
kubectl = shutil.which("kubectl")
if not kubectl:
    print("deploy: kubectl not found; tools/setup/deps.sh installs Debian's kubernetes-client")
    sys.exit(1)

# Discovery as an API server serves it, for the kinds these manifests may use.
RESOURCES = {
    "v1": [("pods", "Pod"), ("services", "Service"), ("secrets", "Secret"),
           ("configmaps", "ConfigMap"), ("serviceaccounts", "ServiceAccount"),
           ("persistentvolumeclaims", "PersistentVolumeClaim")],
    "apps/v1": [("deployments", "Deployment"), ("statefulsets", "StatefulSet"),
                ("daemonsets", "DaemonSet")],
    "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget")],
    "networking.k8s.io/v1": [("networkpolicies", "NetworkPolicy"), ("ingresses", "Ingress")],
}


class Discovery(http.server.BaseHTTPRequestHandler):
    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?")[0]
        groups = [gv for gv in RESOURCES if "/" in gv]
        if path == "/api":
            return self.reply(200, {"kind": "APIVersions", "versions": ["v1"],
                                    "serverAddressByClientCIDRs": []})
        if path == "/apis":
            return self.reply(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": gv.split("/")[0],
                 "versions": [{"groupVersion": gv, "version": gv.split("/")[1]}],
                 "preferredVersion": {"groupVersion": gv, "version": gv.split("/")[1]}}
                for gv in groups]})
        for gv, resources in RESOURCES.items():
            if path == ("/api/" if gv == "v1" else "/apis/") + gv:
                return self.reply(200, {
                    "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                    "resources": [{"name": name, "singularName": "", "namespaced": True,
                                   "kind": kind, "verbs": ["create", "get", "list", "patch"]}
                                  for name, kind in resources]})
        self.reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                         "reason": "NotFound", "code": 404, "message": "not found"})

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Discovery)
threading.Thread(target=server.serve_forever, daemon=True).start()
scratch = tempfile.mkdtemp(prefix="rewind-deploy-check-")
env = dict(os.environ, KUBECONFIG=os.devnull, HOME=scratch)
common = ["--cache-dir", os.path.join(scratch, "cache"), "--request-timeout", "20s"]


def run_kubectl(args, stdin=None):
    return subprocess.run([kubectl] + args + common, input=stdin, capture_output=True,
                          text=True, env=env, timeout=120)


def typed(doc, where):
    """The document as kubectl decodes it into the API's types, or None."""
    text = yaml.safe_dump(doc)
    if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet"):
        # It prints only what it changed: each image gets a suffix, taken
        # off again below.
        containers = doc["spec"]["template"]["spec"]["containers"]
        sets = [f"{c['name']}={c['image']}-checked" for c in containers]
        r = run_kubectl(["set", "image", "--local", "-o", "json", "-f", "-"] + sets, text)
    elif doc["kind"] == "Service":
        selector = ",".join(f"{k}={v}" for k, v in doc["spec"].get("selector", {}).items())
        r = run_kubectl(["set", "selector", "--local", "-o", "json", "-f", "-", selector], text)
    else:
        return None
    if not check(r.returncode == 0 and r.stdout.strip(),
                 f"{where}: kubectl cannot decode it: {r.stderr.strip()}"):
        return None
    view = json.loads(r.stdout)
    if doc["kind"] != "Service":
        for c in view["spec"]["template"]["spec"]["containers"]:
            check(c["image"].endswith("-checked"), f"{where}: kubectl did not set the image")
            c["image"] = c["image"][:-len("-checked")]
    return view


def dropped(source, decoded, path=""):
    """Fields of "source" that kubectl's typed view does not hold."""
    if isinstance(source, dict):
        if not isinstance(decoded, dict):
            return [path or "."]
        return [d for k, v in source.items()
                for d in (dropped(v, decoded[k], f"{path}.{k}") if k in decoded
                          else [f"{path}.{k}"])]
    if isinstance(source, list):
        if not isinstance(decoded, list) or len(decoded) != len(source):
            return [path]
        return [d for i, (s, t) in enumerate(zip(source, decoded))
                for d in dropped(s, t, f"{path}[{i}]")]
    return [] if source == decoded or str(source) == str(decoded) else [path]


url = f"http://127.0.0.1:{server.server_address[1]}"
manifests = sorted((HERE / "k8s").glob("*.yaml"))
check(manifests, "k8s: no manifests")
for path in manifests:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    if not check(docs, f"{path.name}: no documents"):
        continue
    r = run_kubectl(["apply", "--dry-run=client", "--validate=false", "--server", url,
                     "-f", str(path)])
    created = set(re.findall(r"^(\S+) created \(dry run\)$", r.stdout, re.M))
    check(r.returncode == 0, f"{path.name}: kubectl apply --dry-run=client failed: "
          f"{r.stderr.strip()}")
    for doc in docs:
        kind, name = doc.get("kind", "?"), doc.get("metadata", {}).get("name", "?")
        group = doc.get("apiVersion", "").split("/")[0] if "/" in doc.get("apiVersion", "") else ""
        ref = f"{kind.lower()}{'.' + group if group else ''}/{name}"
        check(ref in created, f"{path.name}: kubectl apply did not take {ref}")

    defined = {(d["kind"], d["metadata"]["name"]) for d in docs}
    services = [d for d in docs if d["kind"] == "Service"]
    check(services, f"{path.name}: no Service")
    workloads = []
    for doc in docs:
        where = f"{path.name}: {doc['kind']} {doc['metadata']['name']}"
        view = typed(doc, where)
        if view is None:
            continue
        lost = dropped(doc, view)
        check(not lost, f"{where}: fields the API does not have: {', '.join(lost)}")
        if doc["kind"] in ("Deployment", "StatefulSet"):
            workloads.append(view)

    for svc in services:
        selector = svc["spec"].get("selector", {})
        check(any(selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()
                  for w in workloads),
              f"{path.name}: Service {svc['metadata']['name']} selects no pod of this file")
    for w in workloads:
        where = f"{path.name}: {w['kind']} {w['metadata']['name']}"
        pod = w["spec"]["template"]["spec"]
        sc = pod.get("securityContext", {})
        if w["kind"] == "StatefulSet":
            check(("Service", w["spec"].get("serviceName")) in defined,
                  f"{where}: its serviceName is not a Service of this file")
        claims = {t["metadata"]["name"] for t in w["spec"].get("volumeClaimTemplates", [])}
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for v in pod.get("volumes", []):
            if "persistentVolumeClaim" in v:
                claim = v["persistentVolumeClaim"]["claimName"]
                check(("PersistentVolumeClaim", claim) in defined,
                      f"{where}: claim {claim} is not defined in this file")
            if "secret" in v:
                check(("Secret", v["secret"]["secretName"]) in defined,
                      f"{where}: Secret {v['secret']['secretName']} is not defined in this file")
        containers = pod["containers"]
        ours = [c for c in containers if c["image"].split(":")[0].endswith("rewind")]
        others = [c for c in containers if c not in ours]
        check(ours, f"{where}: no rewind container")
        for c in containers:
            check(c.get("imagePullPolicy") == "IfNotPresent",
                  f"{where}: {c['name']}: imagePullPolicy is not IfNotPresent (a locally "
                  "loaded image would not be used)")
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    check(("Secret", ref["name"]) in defined,
                          f"{where}: Secret {ref['name']} is not defined in this file")
        for c in ours:
            args = c["args"]
            # The container's own securityContext wins over the pod's.
            csc = {**sc, **c.get("securityContext", {})}
            check(csc.get("runAsNonRoot") is True, f"{where}: rewind may run as root")
            check(csc.get("runAsUser") == image_uid and csc.get("runAsGroup") == image_gid,
                  f"{where}: rewind does not run as the image's {image_uid}:{image_gid}")
            for probe in ("readinessProbe", "livenessProbe"):
                check(c.get(probe, {}).get("httpGet", {}).get("path") == "/__rewind/health",
                      f"{where}: {probe} is not on /__rewind/health")
            drain = int(arg_after(args, "--drain-timeout") or 30)
            check(pod.get("terminationGracePeriodSeconds", 30) > drain,
                  f"{where}: grace period does not exceed --drain-timeout")
            mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
            db = arg_after(args, "--db")
            mount = next((m for p, m in mounts.items() if db and db.startswith(p)), None)
            if args[0] == "replay":
                check("--immutable" in args, f"{where}: replay without --immutable")
                check(mount is not None and mount.get("readOnly") is True,
                      f"{where}: the recording is not mounted read-only")
            if args[0] == "record":
                claimed = mount is not None and mount["name"] in claims
                scratch = mount is not None and "emptyDir" in volumes.get(mount["name"], {})
                check(w["kind"] == "StatefulSet" and claimed or scratch,
                      f"{where}: record needs a writable volume per pod (a claim per pod, "
                      "or an emptyDir)")
                check(mount is not None and not mount.get("readOnly"),
                      f"{where}: the recording's volume is mounted read-only")
                if claimed:
                    check(sc.get("fsGroup") == image_gid,
                          f"{where}: the volume is not made writable for group {image_gid} "
                          "(securityContext.fsGroup)")
                if scratch:
                    # Beyond its sizeLimit an emptyDir gets the pod evicted:
                    # the cap must keep the recording, its -wal (~16 MB)
                    # and the next file (~64 KB) below it.
                    limit = quantity(volumes[mount["name"]]["emptyDir"].get("sizeLimit"))
                    cap = rewind_size(arg_after(args, "--max-db-bytes"))
                    check(limit is not None and cap is not None and cap + (64 << 20) <= limit,
                          f"{where}: an emptyDir for the recording needs a sizeLimit above "
                          "--max-db-bytes (with 64 MB to spare)")
            if args[0] == "record" and others:
                # A sidecar beside the service: never what takes it down.
                backend = arg_after(args, "--backend") or ""
                check(re.match(r"https?://(127\.0\.0\.1|localhost|\[::1\])[:/]", backend),
                      f"{where}: a sidecar's --backend is not the pod's own server")
                check("--fail-open" in args,
                      f"{where}: a sidecar records without --fail-open")
                check(arg_after(args, "--max-db-bytes") is not None,
                      f"{where}: a sidecar records without --max-db-bytes")
                check(c.get("resources", {}).get("limits", {}).get("memory"),
                      f"{where}: the sidecar has no memory limit of its own")
                ports = {p.get("name") for p in c.get("ports", [])} | \
                        {p.get("containerPort") for p in c.get("ports", [])}
                for o in others:
                    for probe in ("readinessProbe", "livenessProbe"):
                        port = o.get(probe, {}).get("httpGet", {}).get("port")
                        check(port is not None and port not in ports,
                              f"{where}: {o['name']}'s {probe} is not on its own port "
                              "(rewind dying would take it down)")
                check(w["spec"].get("replicas", 1) >= 2,
                      f"{where}: one replica: a pod whose rewind restarts leaves none")
                labels = w["spec"]["template"]["metadata"]["labels"]
                check(any(d["kind"] == "PodDisruptionBudget" and
                          d["spec"]["selector"]["matchLabels"].items() <= labels.items()
                          for d in docs),
                      f"{where}: no PodDisruptionBudget for the sidecar's pods")
                own = {p.get("name") for o in others for p in o.get("ports", [])}
                check(any(str(p.get("targetPort")) in own
                          for svc in services for p in svc["spec"]["ports"]),
                      f"{where}: no Service around rewind to the service's own port")

server.shutdown()
shutil.rmtree(scratch, ignore_errors=True)
if problems:
    print("\n".join(problems))
    sys.exit(1)
try:
    version = json.loads(run_kubectl(["version", "--client", "-o", "json"]).stdout)
    version = version["clientVersion"]["gitVersion"]
except (ValueError, KeyError):
    version = "version unknown"
print(f"deploy: {len(manifests)} manifests (through {kubectl} {version}) "
      "and the Dockerfile check out")
