#!/usr/bin/env python3
"""Side-by-side memory of weft-controller and Linkerd's policy controller (issue 27), run by
`bin/bench-peers memory`: one control-plane-only local cluster filled with the same state for
both, then each controller started alone on one CPU, interleaved, and measured 10 s after /ready.

The state (per 1,000 pods; see BENCHMARKS.md section 8): pods in 10 namespaces, each with an app
container and an injected linkerd-proxy container, labelled as both injectors label them
(`linkerd.io/control-plane-ns`, `weft.dev/control-plane-ns`), bound to a node name and given a
Running status with a pod IP through the status subresource (as a kubelet would); one Server and
one ServerAuthorization per 10 pods in each API group (policy.weft.dev and policy.linkerd.io);
optionally (`--unmeshed N`) N more pods without those labels and without a proxy.
"""

import argparse
import base64
import concurrent.futures
import http.client
import json
import os
import pathlib
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
NAMESPACES = 10
PODS_PER_APP = 10


def log(message):
    print(f"bench-memory: {message}", file=sys.stderr, flush=True)


def run(*args, **kwargs):
    return subprocess.run(args, check=True, text=True, capture_output=True, **kwargs).stdout


class Cluster:
    """The local cluster's API server, reached with the admin client certificate."""

    def __init__(self, state_dir):
        self.dir = pathlib.Path(state_dir)
        self.kubeconfig = self.dir / "kubeconfig"
        ports = dict(
            line.split("=", 1)
            for line in (self.dir / "ports.env").read_text().split()
            if "=" in line
        )
        self.port = int(ports["APISERVER_PORT"])
        self.context = ssl.create_default_context(cafile=str(self.dir / "pki/ca.crt"))
        self.context.load_cert_chain(str(self.dir / "pki/admin.crt"), str(self.dir / "pki/admin.key"))
        self.kubectl_bin = run(str(ROOT / "bin/k8s-tools"), "path").strip() + "/kubectl"

    def kubectl(self, *args, stdin=None):
        return run(self.kubectl_bin, f"--kubeconfig={self.kubeconfig}", *args, input=stdin)

    def exists(self, path):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=60)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            return response.status == 200
        finally:
            conn.close()

    def request(self, method, path, body=None, content_type="application/json"):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=60)
        try:
            data = json.dumps(body) if body is not None else None
            conn.request(method, path, body=data, headers={"Content-Type": content_type})
            response = conn.getresponse()
            payload = response.read()
            if response.status >= 300 and not (method == "POST" and response.status == 409):
                raise RuntimeError(f"{method} {path}: {response.status} {payload[:300]!r}")
            return response.status
        finally:
            conn.close()


def pod(namespace, index):
    app = f"app-{index // PODS_PER_APP}"
    name = f"{app}-{index % PODS_PER_APP}"
    env = [
        {"name": "LINKERD2_PROXY_LOG", "value": "warn,linkerd=info"},
        {"name": "LINKERD2_PROXY_DESTINATION_SVC_ADDR", "value": "weft-controller.weft.svc.cluster.local.:8086"},
        {"name": "LINKERD2_PROXY_POLICY_SVC_ADDR", "value": "weft-controller.weft.svc.cluster.local.:8090"},
        {"name": "LINKERD2_PROXY_INBOUND_PORTS", "value": "8080"},
        {"name": "LINKERD2_PROXY_IDENTITY_DIR", "value": "/var/run/linkerd/identity/end-entity"},
        {"name": "LINKERD2_PROXY_IDENTITY_LOCAL_NAME", "value": f"default.{namespace}.serviceaccount.identity.weft.cluster.local"},
        {"name": "LINKERD2_PROXY_POLICY_WORKLOAD", "value": json.dumps({"ns": namespace, "pod": name})},
        {"name": "_pod_ns", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "_pod_name", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app": app,
                "pod-template-hash": "5d8f7c9b6",
                "linkerd.io/control-plane-ns": "linkerd",
                "weft.dev/control-plane-ns": "weft",
            },
            "annotations": {"weft.dev/inject": "enabled", "weft.dev/proxy-version": "v2.366.0"},
        },
        "spec": {
            "nodeName": "bench-node",
            "containers": [
                {
                    "name": "app",
                    "image": "registry.local/app:1.0",
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                },
                {
                    "name": "linkerd-proxy",
                    "image": "registry.local/linkerd-proxy:v2.366.0",
                    "env": env,
                    "ports": [
                        {"name": "linkerd-proxy", "containerPort": 4143},
                        {"name": "linkerd-admin", "containerPort": 4191},
                    ],
                    "securityContext": {"runAsUser": 2102, "readOnlyRootFilesystem": True},
                },
            ],
        },
    }


def unmeshed_pod(namespace, index):
    body = pod(namespace, index)
    body["metadata"]["name"] = f"plain-{index}"
    body["metadata"]["labels"] = {"app": f"plain-{index // PODS_PER_APP}"}
    body["metadata"]["annotations"] = {}
    body["spec"]["containers"] = body["spec"]["containers"][:1]
    return body


def last_pod_path(pods):
    n = pods - 1
    body = pod(f"bench-{n % NAMESPACES}", n // NAMESPACES)
    return f"/api/v1/namespaces/{body['metadata']['namespace']}/pods/{body['metadata']['name']}"


def running_status(ip):
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "hostIP": "10.255.0.1",
            "startTime": now,
            "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": now}
                for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
            ],
        }
    }


def ip_of(n):
    return f"10.{64 + n // 65536}.{(n // 256) % 256}.{n % 256}"


def fill(cluster, pods, unmeshed):
    """Creates the state (idempotent: existing objects are kept)."""
    for ns in ["linkerd", "weft"] + [f"bench-{i}" for i in range(NAMESPACES)]:
        cluster.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
        # No controller manager runs here to create it, and pods need it.
        cluster.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": "default"}})
    # Linkerd's policy controller takes a lease owned by this Deployment.
    cluster.request(
        "POST",
        "/apis/apps/v1/namespaces/linkerd/deployments",
        {
            "metadata": {"name": "linkerd-destination"},
            "spec": {
                "selector": {"matchLabels": {"app": "d"}},
                "template": {
                    "metadata": {"labels": {"app": "d"}},
                    "spec": {"containers": [{"name": "d", "image": "none"}]},
                },
            },
        },
    )
    if pods and cluster.exists(last_pod_path(pods)):
        log(f"the {pods} pods exist already (a previous run's state): not created again")
        pods = 0
    jobs = []
    for n in range(pods):
        ns = f"bench-{n % NAMESPACES}"
        jobs.append((pod(ns, n // NAMESPACES), ip_of(n)))
    for n in range(unmeshed):
        ns = f"bench-{n % NAMESPACES}"
        jobs.append((unmeshed_pod(ns, n // NAMESPACES), ip_of(pods + n)))

    def create(job):
        body, ip = job
        ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
        cluster.request("POST", f"/api/v1/namespaces/{ns}/pods", body)
        cluster.request(
            "PATCH",
            f"/api/v1/namespaces/{ns}/pods/{name}/status",
            running_status(ip),
            content_type="application/merge-patch+json",
        )

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        for done, _ in enumerate(pool.map(create, jobs), 1):
            if done % 2000 == 0:
                log(f"{done}/{len(jobs)} pods created and Running")
    log(f"{len(jobs)} pods in {time.monotonic() - started:.0f}s")

    policy = []
    for n in range(pods // PODS_PER_APP):
        ns = f"bench-{n % NAMESPACES}"
        app = f"app-{n // NAMESPACES}"
        for group, version in (("policy.weft.dev", "v1beta1"), ("policy.linkerd.io", "v1beta3")):
            policy.append(
                (
                    f"/apis/{group}/{version}/namespaces/{ns}/servers",
                    {
                        "apiVersion": f"{group}/{version}",
                        "kind": "Server",
                        "metadata": {"name": app, "labels": {"app": app}},
                        "spec": {"podSelector": {"matchLabels": {"app": app}}, "port": "http", "proxyProtocol": "HTTP/1"},
                    },
                )
            )
            policy.append(
                (
                    f"/apis/{group}/v1beta1/namespaces/{ns}/serverauthorizations",
                    {
                        "apiVersion": f"{group}/v1beta1",
                        "kind": "ServerAuthorization",
                        "metadata": {"name": app},
                        "spec": {
                            "server": {"name": app},
                            "client": {"meshTLS": {"serviceAccounts": [{"name": "default", "namespace": ns}]}},
                        },
                    },
                )
            )
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda job: cluster.request("POST", *job), policy))
    log(f"{len(policy)} Servers and ServerAuthorizations")


def install_crds(cluster, linkerd_src):
    gateway = run(str(ROOT / "bin/gateway-api-crds")).strip()
    cluster.kubectl("apply", "--server-side", "-f", gateway)
    cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "charts/weft/crds"))
    helm = run(str(ROOT / "bin/k8s-tools"), "path").strip() + "/helm"
    with tempfile.TemporaryDirectory() as tmp:
        chart = pathlib.Path(tmp) / "linkerd-crds"
        subprocess.run(["cp", "-r", str(linkerd_src / "charts/linkerd-crds"), str(chart)], check=True)
        (chart / "charts").mkdir(exist_ok=True)
        subprocess.run(["cp", "-r", str(linkerd_src / "charts/partials"), str(chart / "charts")], check=True)
        crds = run(helm, "template", "linkerd-crds", str(chart), "--set", "installGatewayAPI=false")
    cluster.kubectl("apply", "--server-side", "-f", "-", stdin=crds)
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")


def pki(directory):
    """A webhook serving key and certificate, and an identity issuer (a CA) for weft-controller."""
    d = pathlib.Path(directory)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", d / "server.key", "-out", d / "server.crt", "-days", "2", "-subj", "/CN=weft-bench",
         "-addext", "subjectAltName=DNS:weft-bench"],
        check=True, capture_output=True,
    )
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", d / "issuer.key", "-out", d / "issuer.crt", "-days", "2",
         "-subj", "/CN=identity.weft.cluster.local", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        check=True, capture_output=True,
    )


def proc_stat(pid):
    rss = hwm = 0
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return rss, hwm, cpu


def wait_ready(url, process, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the controller exited ({process.returncode}) before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready within {timeout}s")


def measure(name, command, ready_url, env, logfile, cpu, settle, heaptrack=None):
    """Starts `command` pinned to `cpu`, waits for /ready and `settle` seconds, and reads its RSS
    and CPU time. With `heaptrack` (an output path) the command runs under heaptrack, which
    records its allocations until it exits; its own figures then include heaptrack's."""
    if heaptrack:
        command = ["heaptrack", "-o", str(heaptrack), *command]
    with open(logfile, "w") as out:
        started = time.monotonic()
        process = subprocess.Popen(["taskset", "-c", cpu, *command], env=env, stdout=out, stderr=out,
                                   stdin=subprocess.DEVNULL)
        pid = process.pid
        try:
            wait_ready(ready_url, process)
            ready = time.monotonic() - started
            if heaptrack:
                # heaptrack's script does not pass SIGTERM on: signal the controller itself.
                pid = int(run("pgrep", "-n", "-f", f"^{command[3]}"))
            _, _, cpu_ready = proc_stat(pid)
            time.sleep(settle)
            rss, hwm, cpu_total = proc_stat(pid)
        finally:
            if pid == process.pid:
                process.terminate()
            else:
                os.kill(pid, signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    log(f"{name}: ready {ready:.2f}s, RSS {rss:.1f} MiB (peak {hwm:.1f}), CPU {cpu_ready:.2f}s to ready, {cpu_total:.2f}s to +{settle}s")
    return {"ready_s": ready, "rss_mib": rss, "peak_mib": hwm, "cpu_ready_s": cpu_ready, "cpu_s": cpu_total}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--linkerd", required=True, help="linkerd-policy-controller binary")
    parser.add_argument("--linkerd-src", required=True, type=pathlib.Path, help="extracted linkerd2 tree (its CRD chart)")
    parser.add_argument("--weft", help="weft-controller binary (default: cargo build --release)")
    parser.add_argument("--pods", type=int, default=2000, help="meshed pods (default 2000)")
    parser.add_argument("--unmeshed", type=int, default=0, help="pods without a proxy (default 0)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each controller, interleaved (default 3)")
    parser.add_argument("--settle", type=int, default=10, help="seconds after /ready to measure (default 10)")
    parser.add_argument("--cpu", default="1", help="the CPU each controller is pinned to (default 1)")
    parser.add_argument("--only", choices=["weft", "linkerd"], help="measure one controller only")
    parser.add_argument("--weft-env", action="append", default=[], help="NAME=VALUE for weft-controller (repeatable)")
    parser.add_argument("--json", type=pathlib.Path, help="write the samples here")
    parser.add_argument("--heaptrack", type=pathlib.Path,
                        help="run weft-controller under heaptrack, writing its recording to this path "
                             "(give a --weft built with --no-default-features: heaptrack cannot see jemalloc)")
    args = parser.parse_args()
    if args.pods < 0 or args.unmeshed < 0 or args.runs < 1:
        parser.error("--pods and --unmeshed must be 0 or more, --runs 1 or more")

    weft = args.weft
    if weft is None:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "weft-policy-controller"], cwd=ROOT, check=True)
        weft = str(ROOT / "target/release/weft-controller")

    state = os.environ.get("WEFT_CLUSTER_DIR") or tempfile.mkdtemp(prefix="weft-bench-memory-")
    env = dict(os.environ, WEFT_CLUSTER_DIR=state)
    log(f"cluster state in {state}")
    subprocess.run([str(ROOT / "bin/cluster"), "up", "--no-node"], env=env, check=True, stdout=subprocess.DEVNULL)
    cluster = Cluster(state)
    install_crds(cluster, args.linkerd_src)
    fill(cluster, args.pods, args.unmeshed)

    work = pathlib.Path(tempfile.mkdtemp(prefix="weft-bench-memory-run-"))
    pki(work)
    weft_env = dict(os.environ)
    weft_env.update(kv.split("=", 1) for kv in args.weft_env)
    weft_cmd = [
        weft, f"--kubeconfig={cluster.kubeconfig}", "--admin-addr=127.0.0.1:19990",
        "--server-addr=127.0.0.1:19443", f"--server-tls-key={work / 'server.key'}",
        f"--server-tls-certs={work / 'server.crt'}", "--control-plane-namespace=weft",
        "--grpc-addr=127.0.0.1:19090", "--grpc-plaintext",
        f"--identity-trust-anchors-file={work / 'issuer.crt'}", f"--identity-issuer-certs={work / 'issuer.crt'}",
        f"--identity-issuer-key={work / 'issuer.key'}", "--log-level=info",
    ]
    # As Linkerd's chart runs it (the destination pod's policy container), with its webhook off.
    linkerd_cmd = [
        args.linkerd, f"--kubeconfig={cluster.kubeconfig}", "--admin-addr=127.0.0.1:19991",
        "--grpc-addr=127.0.0.1:19091", "--admission-controller-disabled", "--control-plane-namespace=linkerd",
        "--cluster-networks=10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16",
        "--identity-domain=cluster.local", "--cluster-domain=cluster.local", "--default-policy=all-unauthenticated",
        "--log-level=info", "--log-format=plain", "--probe-networks=0.0.0.0/0,::/0",
        "--default-opaque-ports=25,587,3306,4444,5432,6379,9300,11211",
    ]
    linkerd_env = dict(os.environ, HOSTNAME="linkerd-destination-bench")
    samples = {"weft": [], "linkerd": []}
    for r in range(args.runs):
        for name in ("linkerd", "weft"):
            if args.only and args.only != name:
                continue
            if name == "weft":
                sample = measure(f"weft-controller run {r + 1}", weft_cmd, "http://127.0.0.1:19990/ready",
                                 weft_env, work / f"weft-{r}.log", args.cpu, args.settle,
                                 heaptrack=args.heaptrack and f"{args.heaptrack}-{r}")
            else:
                sample = measure(f"linkerd policy controller run {r + 1}", linkerd_cmd,
                                 "http://127.0.0.1:19991/ready", linkerd_env, work / f"linkerd-{r}.log",
                                 args.cpu, args.settle)
            samples[name].append(sample)
    print(f"\n{args.pods} meshed pods, {args.unmeshed} unmeshed, {args.pods // PODS_PER_APP} Servers and "
          f"ServerAuthorizations per API group; {args.runs} runs each, CPU {args.cpu}, +{args.settle}s after /ready")
    print(f"{'':28} {'RSS MiB (min-max)':>20} {'median':>7} {'peak MiB':>9} {'CPU s to ready':>15} {'ready s':>8}")
    for name, label in (("linkerd", "Linkerd policy controller"), ("weft", "weft-controller")):
        s = samples[name]
        if not s:
            continue
        rss = [x["rss_mib"] for x in s]
        print(f"{label:28} {f'{min(rss):.1f}-{max(rss):.1f}':>20} {statistics.median(rss):7.1f} "
              f"{statistics.median(x['peak_mib'] for x in s):9.1f} "
              f"{statistics.median(x['cpu_ready_s'] for x in s):15.2f} {statistics.median(x['ready_s'] for x in s):8.2f}")
    if args.json:
        args.json.write_text(json.dumps(samples, indent=2))
    log(f"logs in {work}; the cluster keeps running (WEFT_CLUSTER_DIR={state} bin/cluster down)")


if __name__ == "__main__":
    main()
