#!/usr/bin/env python3
"""Checks tools/deploy without a cluster or a Docker engine: every
manifest parses as YAML and has what the README promises (probes on
/__rewind/health, non-root, the recording mounted read-only for replay, a
volume per pod for record, a drain shorter than the grace period), and the
Dockerfile is multi-stage, builds with tools/build.sh (what CI runs) and
runs as a non-root user. Exit 0 when all holds."""
import pathlib
import re
import sys

import yaml

HERE = pathlib.Path(__file__).resolve().parent
problems = []


def check(cond, what):
    if not cond:
        problems.append(what)


def containers(doc):
    return doc["spec"]["template"]["spec"]["containers"]


def arg_after(args, flag):
    return args[args.index(flag) + 1] if flag in args else None


for path in sorted((HERE / "k8s").glob("*.yaml")):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    check(docs, f"{path.name}: no documents")
    kinds = {d["kind"] for d in docs}
    check("Service" in kinds, f"{path.name}: no Service")
    for doc in docs:
        check("apiVersion" in doc and "metadata" in doc, f"{path.name}: {doc.get('kind')} lacks apiVersion/metadata")
        if doc["kind"] not in ("Deployment", "StatefulSet"):
            continue
        pod = doc["spec"]["template"]["spec"]
        check(pod["securityContext"].get("runAsNonRoot") is True, f"{path.name}: pods may run as root")
        for c in containers(doc):
            args = c["args"]
            for probe in ("readinessProbe", "livenessProbe"):
                check(c.get(probe, {}).get("httpGet", {}).get("path") == "/__rewind/health",
                      f"{path.name}: {probe} is not on /__rewind/health")
            drain = int(arg_after(args, "--drain-timeout") or 30)
            check(pod.get("terminationGracePeriodSeconds", 30) > drain,
                  f"{path.name}: grace period does not exceed --drain-timeout")
            mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
            if args[0] == "replay":
                check("--immutable" in args, f"{path.name}: replay without --immutable")
                db = arg_after(args, "--db")
                mount = next((m for p, m in mounts.items() if db and db.startswith(p)), None)
                check(mount is not None and mount.get("readOnly") is True,
                      f"{path.name}: the recording is not mounted read-only")
            if args[0] == "record":
                check(doc["kind"] == "StatefulSet" and doc["spec"].get("volumeClaimTemplates"),
                      f"{path.name}: record needs a volume per pod")

docker = (HERE / "Dockerfile").read_text()
stages = re.findall(r"^FROM\s+(\S+)", docker, re.M)
check(len(stages) >= 2, "Dockerfile: not multi-stage")
check(all(s.startswith("debian:") for s in stages), "Dockerfile: not Debian-based")
check(re.search(r"^RUN tools/build\.sh", docker, re.M), "Dockerfile: does not build with tools/build.sh")
user = re.findall(r"^USER\s+(\S+)", docker, re.M)
check(user and not user[-1].startswith(("0", "root")), "Dockerfile: runs as root")

if problems:
    print("\n".join(problems))
    sys.exit(1)
print(f"deploy: {len(list((HERE / 'k8s').glob('*.yaml')))} manifests and the Dockerfile check out")
