"""Assertions on the Weft chart's rendered manifests and installed objects, used by bin/chart-check.

  _chart_check.py render MODE FILE NAMESPACE RELEASE   check a `helm template` output (MODE: default|ha|cert-manager)
  _chart_check.py split FILE OUTDIR                     write crds.yaml, objects.yaml, webhooks.yaml; print CRD names
  _chart_check.py pick FILE NAME                        print the documents of FILE named NAME
  _chart_check.py args FILE                             print the controller container's args, one per line
  _chart_check.py readme VALUES README                  every value in VALUES is documented in README's table
  _chart_check.py host-args DEPLOY.json TLSDIR          the installed Deployment's controller args, rewritten to run
                                                        on this host: loopback ports (printed first, one per line:
                                                        admin, server, policy) and the TLS files in TLSDIR
  _chart_check.py installed-tls STATE.json              check the TLS of an installed release (see state_of below)
  _chart_check.py same-tls BEFORE.json AFTER.json       the Secret and caBundles did not change across an upgrade
  _chart_check.py new-tls BEFORE.json AFTER.json        the Secret was regenerated (the DNS names changed)

Every failure names the object and field; the exit status is 1 on any failure.
"""

import base64
import json
import os
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the machine
    sys.exit("chart-check: error: python3 needs PyYAML (pip install pyyaml)")

CLUSTER_SCOPED = {
    "ClusterRole",
    "ClusterRoleBinding",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "CustomResourceDefinition",
}
WEBHOOK_KINDS = {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
SYSTEM_NAMESPACES = {"kube-system", "kube-public", "kube-node-lease"}


def short(value, limit=160):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Checker:
    def __init__(self):
        self.failures = []
        self.passed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failures.append(what)

    def eq(self, actual, expected, what):
        self.check(actual == expected, f"{what}: expected {short(expected)}, got {short(actual)}")

    def finish(self, label):
        for failure in self.failures:
            print(f"chart-check: FAIL {label}: {failure}", file=sys.stderr)
        if self.failures:
            sys.exit(1)
        print(f"chart-check: {label}: {self.passed} checks passed")


def load_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def only(docs, kind, c):
    found = [d for d in docs if d.get("kind") == kind]
    c.eq(len(found), 1, f"number of {kind} objects")
    return found[0] if found else {}


def name_of(doc):
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def match_expression(selector, key):
    for expr in (selector or {}).get("matchExpressions", []):
        if expr.get("key") == key:
            return expr
    return {}


def verify_cert(ca_pem, cert_pem, key_pem, dns_names, c, label):
    """The serving certificate chains to the CA, is valid for every DNS name, and matches its key."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, pem in (("ca", ca_pem), ("cert", cert_pem), ("key", key_pem)):
            paths[name] = os.path.join(tmp, name + ".pem")
            with open(paths[name], "wb") as f:
                f.write(pem)
        for dns in dns_names:
            res = subprocess.run(
                ["openssl", "verify", "-purpose", "sslserver", "-verify_hostname", dns, "-CAfile", paths["ca"],
                 paths["cert"]],
                capture_output=True, text=True, check=False)
            c.check(res.returncode == 0,
                    f"{label}: certificate does not verify against the caBundle for {dns}: {res.stdout}{res.stderr}")
        pub_cert = subprocess.run(["openssl", "x509", "-noout", "-pubkey", "-in", paths["cert"]],
                                  capture_output=True, check=False).stdout
        pub_key = subprocess.run(["openssl", "pkey", "-pubout", "-in", paths["key"]],
                                 capture_output=True, check=False).stdout
        c.check(bool(pub_cert) and pub_cert == pub_key, f"{label}: tls.key does not belong to tls.crt")


def verify_identity_ca(cert_pem, key_pem, c):
    """The identity issuer is an ECDSA P-256 CA whose key belongs to it (what linkerd2-proxy can verify)."""
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        for path, pem in ((cert, cert_pem), (key, key_pem)):
            with open(path, "wb") as f:
                f.write(pem)
        text = subprocess.run(["openssl", "x509", "-noout", "-text", "-in", cert],
                              capture_output=True, text=True, check=False).stdout
        c.check("CA:TRUE" in text, "identity issuer certificate is a CA")
        c.check("NIST CURVE: P-256" in text, "identity issuer key is ECDSA P-256")
        pub_cert = subprocess.run(["openssl", "x509", "-noout", "-pubkey", "-in", cert],
                                  capture_output=True, check=False).stdout
        pub_key = subprocess.run(["openssl", "pkey", "-pubout", "-in", key], capture_output=True, check=False).stdout
        c.check(bool(pub_cert) and pub_cert == pub_key, "identity issuer tls.key belongs to tls.crt")


def dns_names_for(service, namespace, domain="cluster.local"):
    return [service, f"{service}.{namespace}", f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.{domain}"]


def check_render(mode, path, namespace, release):
    c = Checker()
    docs = load_docs(path)
    fullname = release if "weft" in release else f"{release}-weft"
    tls_secret = f"{fullname}-webhook-tls"

    for d in docs:
        kind = d.get("kind")
        ns = d.get("metadata", {}).get("namespace")
        if kind in CLUSTER_SCOPED:
            c.check(ns is None, f"{name_of(d)} is cluster-scoped but has namespace {ns!r}")
        else:
            c.eq(ns, namespace, f"{name_of(d)} metadata.namespace")

    # RBAC: exactly get/list/watch on the ten watched resources, and create on tokenreviews (identity).
    role = only(docs, "ClusterRole", c)
    granted = set()
    for rule in role.get("rules", []):
        verbs = tuple(sorted(rule.get("verbs", [])))
        for group in rule.get("apiGroups", []):
            for res in rule.get("resources", []):
                granted.add((group, res, verbs))
    watch = ("get", "list", "watch")
    c.eq(granted, {("", "pods", watch), ("", "namespaces", watch), ("", "services", watch),
                   ("discovery.k8s.io", "endpointslices", watch), ("policy.weft.dev", "servers", watch),
                   ("policy.weft.dev", "serverauthorizations", watch),
                   ("policy.weft.dev", "authorizationpolicies", watch),
                   ("policy.weft.dev", "meshtlsauthentications", watch),
                   ("policy.weft.dev", "networkauthentications", watch),
                   ("gateway.networking.k8s.io", "httproutes", watch),
                   ("authentication.k8s.io", "tokenreviews", ("create",))}, "ClusterRole rules")
    binding = only(docs, "ClusterRoleBinding", c)
    sa = only(docs, "ServiceAccount", c)
    c.eq(binding.get("roleRef", {}).get("name"), role.get("metadata", {}).get("name"), "ClusterRoleBinding roleRef")
    c.eq(binding.get("subjects"), [{"kind": "ServiceAccount", "name": sa.get("metadata", {}).get("name"),
                                    "namespace": namespace}], "ClusterRoleBinding subjects")

    # Service: 443 -> webhook, plus the proxies' gRPC API and admin.
    svc = only(docs, "Service", c)
    svc_name = svc.get("metadata", {}).get("name")
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in svc.get("spec", {}).get("ports", [])}
    c.eq(ports, {"webhook": (443, "webhook"), "grpc": (8090, "grpc"), "admin": (8080, "admin")}, "Service ports")

    # Deployment.
    deploy = only(docs, "Deployment", c)
    pod = deploy.get("spec", {}).get("template", {}).get("spec", {})
    containers = pod.get("containers", [])
    c.eq([x.get("name") for x in containers], ["weft-controller"], "Deployment containers")
    ctr = containers[0] if containers else {}
    args = ctr.get("args", [])
    for expected in (f"--control-plane-namespace={namespace}",
                     f"--proxy-policy-addr={svc_name}.{namespace}.svc.cluster.local:8090",
                     f"--proxy-identity-addr={svc_name}.{namespace}.svc.cluster.local:8090",
                     f"--proxy-destination-addr={svc_name}.{namespace}.svc.cluster.local:8090",
                     f"--proxy-identity-name={sa.get('metadata', {}).get('name')}.{namespace}"
                     f".serviceaccount.identity.{namespace}.cluster.local",
                     "--identity-trust-anchors-file=/var/run/weft/identity/trust-anchors/ca-bundle.crt",
                     "--proxy-image=cr.l5d.io/linkerd/proxy", "--proxy-version=edge-26.8.3",
                     "--server-addr=0.0.0.0:9443", "--admin-addr=0.0.0.0:8080", "--grpc-addr=0.0.0.0:8090",
                     f"--service-account={sa.get('metadata', {}).get('name')}",
                     "--identity-issuer-certs=/var/run/weft/identity/issuer/tls.crt",
                     "--identity-issuer-key=/var/run/weft/identity/issuer/tls.key",
                     "--identity-cert-lifetime=24h",
                     "--server-tls-key=/var/run/weft/tls/tls.key", "--server-tls-certs=/var/run/weft/tls/tls.crt",
                     "--default-policy=all-unauthenticated", "--log-format=plain", "--proxy-uid=2102",
                     "--opaque-ports=25,587,3306,4444,5432,6379,9300,11211",
                     "--cluster-networks=10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,fd00::/8"):
        c.check(expected in args, f"controller args lack {expected}: {args}")
    flags = [a.split("=", 1)[0] for a in args]
    c.eq(len(flags), len(set(flags)), "controller flags are unique")
    c.eq(ctr.get("livenessProbe", {}).get("httpGet"), {"path": "/live", "port": "admin"}, "livenessProbe")
    c.eq(ctr.get("readinessProbe", {}).get("httpGet"), {"path": "/ready", "port": "admin"}, "readinessProbe")
    sc = ctr.get("securityContext", {})
    c.eq(sc.get("readOnlyRootFilesystem"), True, "container readOnlyRootFilesystem")
    c.eq(sc.get("allowPrivilegeEscalation"), False, "container allowPrivilegeEscalation")
    c.eq(sc.get("capabilities"), {"drop": ["ALL"]}, "container capabilities")
    c.eq(sc.get("seccompProfile"), {"type": "RuntimeDefault"}, "container seccompProfile")
    psc = pod.get("securityContext", {})
    c.eq(psc.get("runAsNonRoot"), True, "pod runAsNonRoot")
    c.check(isinstance(psc.get("runAsUser"), int) and psc["runAsUser"] > 0, "pod runAsUser is a non-zero uid")
    c.check(bool(ctr.get("resources", {}).get("requests")), "controller resource requests are set")
    c.eq(pod.get("serviceAccountName"), sa.get("metadata", {}).get("name"), "Deployment serviceAccountName")
    c.eq([v.get("secret", {}).get("secretName") for v in pod.get("volumes", []) if "secret" in v],
         [tls_secret, f"{fullname}-identity-issuer"], "volume Secrets: webhook TLS and identity issuer")
    c.eq([v.get("configMap", {}).get("name") for v in pod.get("volumes", []) if "configMap" in v],
         [f"{deploy.get('metadata', {}).get('name')}-identity-trust-anchors"], "trust anchors ConfigMap volume")
    pod_labels = deploy.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
    c.eq(deploy.get("spec", {}).get("selector", {}).get("matchLabels"), svc.get("spec", {}).get("selector"),
         "Deployment selector equals Service selector")
    for k, v in svc.get("spec", {}).get("selector", {}).items():
        c.eq(pod_labels.get(k), v, f"pod label {k}")

    # Webhooks.
    mwc = only(docs, "MutatingWebhookConfiguration", c)
    vwc = only(docs, "ValidatingWebhookConfiguration", c)
    hooks = mwc.get("webhooks", [{}])
    c.eq(len(hooks), 1, "mutating webhooks")
    m = hooks[0]
    c.eq(m.get("rules"), [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                           "resources": ["pods"], "scope": "Namespaced"}], "injector rules")
    c.eq(m.get("clientConfig", {}).get("service"), {"name": svc_name, "namespace": namespace, "path": "/inject",
                                                    "port": 443}, "injector clientConfig.service")
    c.eq(m.get("sideEffects"), "None", "injector sideEffects")
    c.eq(m.get("admissionReviewVersions"), ["v1"], "injector admissionReviewVersions")
    c.eq(m.get("failurePolicy"), "Fail", "injector failurePolicy")
    c.eq(m.get("reinvocationPolicy"), "IfNeeded", "injector reinvocationPolicy")
    c.check(1 <= m.get("timeoutSeconds", 0) <= 30, "injector timeoutSeconds within 1-30")
    names = match_expression(m.get("namespaceSelector"), "kubernetes.io/metadata.name")
    c.eq(names.get("operator"), "NotIn", "injector namespaceSelector operator on kubernetes.io/metadata.name")
    c.check(SYSTEM_NAMESPACES | {namespace} <= set(names.get("values", [])),
            f"injector namespaceSelector excludes system namespaces and {namespace}: {names}")
    opt_out = match_expression(m.get("namespaceSelector"), "weft.dev/admission-webhooks")
    c.eq((opt_out.get("operator"), opt_out.get("values")), ("NotIn", ["disabled"]),
         "injector namespaceSelector opt-out label")
    vhooks = vwc.get("webhooks", [{}])
    # Weft's policy resources (failurePolicy from values), and the Gateway API's HTTPRoutes in a webhook of their own
    # that fails open: other Gateway API implementations share them.
    c.eq([h.get("name") for h in vhooks], ["policy-validator.weft.dev", "httproute-validator.weft.dev"],
         "validating webhooks")
    v = vhooks[0]
    c.eq(v.get("rules"), [{"apiGroups": ["policy.weft.dev"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
                           "resources": ["servers", "serverauthorizations", "authorizationpolicies",
                                         "meshtlsauthentications", "networkauthentications"],
                           "scope": "Namespaced"}],
         "validator rules")
    c.eq(v.get("failurePolicy"), "Fail", "validator failurePolicy")
    r = vhooks[1] if len(vhooks) > 1 else {}
    c.eq(r.get("rules"), [{"apiGroups": ["gateway.networking.k8s.io"], "apiVersions": ["v1"],
                           "operations": ["CREATE", "UPDATE"], "resources": ["httproutes"], "scope": "Namespaced"}],
         "HTTPRoute validator rules")
    c.eq(r.get("failurePolicy"), "Ignore", "HTTPRoute validator failurePolicy (fails open)")
    for hook in (v, r):
        what = hook.get("name", "validator")
        c.eq(hook.get("clientConfig", {}).get("service"), {"name": svc_name, "namespace": namespace,
                                                          "path": "/validate", "port": 443},
             f"{what} clientConfig.service")
        c.eq((hook.get("sideEffects"), hook.get("admissionReviewVersions")), ("None", ["v1"]),
             f"{what} sideEffects/versions")
        opt_out = match_expression(hook.get("namespaceSelector"), "weft.dev/admission-webhooks")
        c.eq((opt_out.get("operator"), opt_out.get("values")), ("NotIn", ["disabled"]),
             f"{what} namespaceSelector opt-out label")

    # Identity: the trust anchors ConfigMap, and (identity.mode=helm) the issuer Secret whose CA they are.
    identity_secret = f"{fullname}-identity-issuer"
    anchors = [d for d in docs if d.get("kind") == "ConfigMap"
               and d.get("metadata", {}).get("name") == f"{fullname}-identity-trust-anchors"]
    c.eq(len(anchors), 1, "trust anchors ConfigMap")
    issuers = [d for d in docs if d.get("kind") == "Secret" and d.get("metadata", {}).get("name") == identity_secret]
    c.eq(len(issuers), 1, "identity issuer Secret (identity.mode=helm)")
    if anchors and issuers:
        data = issuers[0].get("data", {})
        c.eq(issuers[0].get("type"), "kubernetes.io/tls", "identity issuer Secret type")
        bundle = anchors[0].get("data", {}).get("ca-bundle.crt", "")
        c.eq(bundle.strip(), base64.b64decode(data.get("ca.crt", "")).decode().strip(),
             "trust anchors ConfigMap holds the issuer Secret's ca.crt")
        verify_identity_ca(base64.b64decode(data.get("tls.crt", "")), base64.b64decode(data.get("tls.key", "")), c)

    # TLS.
    secrets = [d for d in docs if d.get("kind") == "Secret" and d.get("metadata", {}).get("name") != identity_secret]
    certs = [d for d in docs if d.get("kind") == "Certificate"]
    dns = dns_names_for(svc_name, namespace)
    if mode == "cert-manager":
        c.eq(secrets, [], "no chart-made Secret in certManager mode")
        serving = [x for x in certs if x.get("spec", {}).get("secretName") == tls_secret]
        c.eq(len(serving), 1, "Certificate for the TLS Secret")
        if serving:
            spec = serving[0].get("spec", {})
            c.eq(spec.get("dnsNames"), dns, "Certificate dnsNames")
            c.eq(spec.get("privateKey", {}).get("encoding"), "PKCS8", "Certificate key encoding")
            cert_name = serving[0].get("metadata", {}).get("name")
            issuer = spec.get("issuerRef", {}).get("name")
            c.check(any(d.get("kind") == "Issuer" and d.get("metadata", {}).get("name") == issuer for d in docs),
                    f"Issuer {issuer} is rendered")
            for hook in (mwc, vwc):
                ann = hook.get("metadata", {}).get("annotations", {})
                c.eq(ann.get("cert-manager.io/inject-ca-from"), f"{namespace}/{cert_name}",
                     f"{name_of(hook)} inject-ca-from")
                for w in hook.get("webhooks", [{}]):
                    c.check("caBundle" not in w.get("clientConfig", {}),
                            f"{name_of(hook)} {w.get('name')} leaves caBundle to cainjector")
    else:
        c.eq(certs, [], "no Certificate in helm TLS mode")
        c.eq(len(secrets), 1, "one TLS Secret")
        if secrets:
            s = secrets[0]
            c.eq((s.get("metadata", {}).get("name"), s.get("type")), (tls_secret, "kubernetes.io/tls"), "TLS Secret")
            data = s.get("data", {})
            for hook in (mwc, vwc):
                for w in hook.get("webhooks", [{}]):
                    c.eq(w.get("clientConfig", {}).get("caBundle"), data.get("ca.crt"),
                         f"{name_of(hook)} {w.get('name')} caBundle equals the Secret's ca.crt")
            if all(k in data for k in ("ca.crt", "tls.crt", "tls.key")):
                verify_cert(*(base64.b64decode(data[k]) for k in ("ca.crt", "tls.crt", "tls.key")), dns, c,
                            "rendered Secret")
            else:
                c.check(False, f"TLS Secret lacks ca.crt/tls.crt/tls.key: {sorted(data)}")

    # Availability.
    pdbs = [d for d in docs if d.get("kind") == "PodDisruptionBudget"]
    anti = pod.get("affinity", {}).get("podAntiAffinity", {})
    if mode == "ha":
        c.eq(deploy.get("spec", {}).get("replicas"), 3, "HA replicas")
        c.eq(len(pdbs), 1, "HA PodDisruptionBudget")
        if pdbs:
            c.eq(pdbs[0].get("spec", {}).get("maxUnavailable"), 1, "PDB maxUnavailable")
            c.eq(pdbs[0].get("spec", {}).get("selector", {}).get("matchLabels"),
                 deploy.get("spec", {}).get("selector", {}).get("matchLabels"), "PDB selector")
        required = anti.get("requiredDuringSchedulingIgnoredDuringExecution", [])
        c.eq([t.get("topologyKey") for t in required], ["kubernetes.io/hostname"], "HA required anti-affinity")
        c.eq(deploy.get("spec", {}).get("strategy", {}).get("rollingUpdate"), {"maxSurge": 1, "maxUnavailable": 1},
             "HA rollout can proceed with a replica on every node")
        if required:
            c.eq(required[0].get("labelSelector", {}).get("matchLabels"),
                 deploy.get("spec", {}).get("selector", {}).get("matchLabels"), "anti-affinity selector")
    else:
        c.eq(deploy.get("spec", {}).get("replicas"), 1, "default replicas")
        c.eq(pdbs, [], "no PodDisruptionBudget by default")
        c.check("preferredDuringSchedulingIgnoredDuringExecution" in anti, "default preferred anti-affinity")
        c.eq(deploy.get("spec", {}).get("strategy", {}).get("rollingUpdate"), {"maxSurge": 1, "maxUnavailable": 0},
             "default rollout keeps the replica until its successor is ready")

    c.finish(f"render[{mode}] {len(docs)} objects")


def split(path, outdir):
    docs = load_docs(path)
    groups = {"crds": [], "objects": [], "webhooks": []}
    for d in docs:
        kind = d.get("kind")
        key = "crds" if kind == "CustomResourceDefinition" else "webhooks" if kind in WEBHOOK_KINDS else "objects"
        groups[key].append(d)
    for key, items in groups.items():
        with open(os.path.join(outdir, key + ".yaml"), "w", encoding="utf-8") as f:
            yaml.safe_dump_all(items, f, sort_keys=False)
        with open(os.path.join(outdir, key + ".count"), "w", encoding="utf-8") as f:
            f.write(f"{len(items)}\n")
    for d in groups["crds"]:
        print(d["metadata"]["name"])


def pick(path, name):
    docs = [d for d in load_docs(path) if d.get("metadata", {}).get("name") == name]
    if not docs:
        sys.exit(f"chart-check: error: no document named {name} in {path}")
    yaml.safe_dump_all(docs, sys.stdout, sort_keys=False)


def controller_args(path):
    deploys = [d for d in load_docs(path) if d.get("kind") == "Deployment"]
    if len(deploys) != 1:
        sys.exit(f"chart-check: error: expected one Deployment in {path}, found {len(deploys)}")
    for ctr in deploys[0]["spec"]["template"]["spec"]["containers"]:
        if ctr.get("name") == "weft-controller":
            for arg in ctr.get("args", []):
                if "\n" in arg:
                    sys.exit(f"chart-check: error: controller arg contains a newline: {arg!r}")
                print(arg)
            return
    sys.exit(f"chart-check: error: no weft-controller container in {path}")


# Values whose content is free-form Kubernetes YAML: documented as a whole, not key by key.
FREE_FORM_VALUES = {"controller.resources", "podAnnotations", "podLabels", "nodeSelector"}


def readme_lists_values(values_path, readme_path):
    c = Checker()
    with open(values_path, encoding="utf-8") as f:
        values = yaml.safe_load(f)
    with open(readme_path, encoding="utf-8") as f:
        rows = {line.split("|")[1].strip().strip("`") for line in f if line.startswith("| `")}

    def leaves(node, prefix):
        for key, value in node.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict) and value and path not in FREE_FORM_VALUES:
                yield from leaves(value, path + ".")
            else:
                yield path

    documented = set()
    for path in leaves(values, ""):
        documented.add(path)
        c.check(path in rows, f"README.md has no row for value {path}")
    for row in sorted(rows - documented):
        c.check(False, f"README.md documents {row}, which values.yaml does not have")
    c.finish(f"README documents all {len(documented)} values")


def host_args(deploy_path, tls_dir):
    import socket

    with open(deploy_path, encoding="utf-8") as f:
        deploy = json.load(f)
    ctr = next(x for x in deploy["spec"]["template"]["spec"]["containers"] if x["name"] == "weft-controller")
    socks = []
    for _ in range(3):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        socks.append(sock)
    admin, server, grpc = (sock.getsockname()[1] for sock in socks)
    for sock in socks:
        sock.close()
    overrides = {
        "--admin-addr": f"127.0.0.1:{admin}",
        "--server-addr": f"127.0.0.1:{server}",
        "--grpc-addr": f"127.0.0.1:{grpc}",
        "--server-tls-key": os.path.join(tls_dir, "tls.key"),
        "--server-tls-certs": os.path.join(tls_dir, "tls.crt"),
        "--identity-issuer-key": os.path.join(tls_dir, "identity", "tls.key"),
        "--identity-issuer-certs": os.path.join(tls_dir, "identity", "tls.crt"),
        "--identity-trust-anchors-file": os.path.join(tls_dir, "identity", "ca-bundle.crt"),
    }
    print(admin, server, grpc, sep="\n")
    seen = set()
    for arg in ctr["args"]:
        flag = arg.split("=", 1)[0]
        if flag in overrides:
            seen.add(flag)
            print(f"{flag}={overrides[flag]}")
        else:
            print(arg)
    missing = set(overrides) - seen
    if missing:
        sys.exit(f"chart-check: error: the Deployment lacks {sorted(missing)}")


def installed_tls(state_path):
    """STATE.json: {"service": <name>, "namespace": <ns>, "clusterDomain": <domain>, "secret": <Secret>,
    "mutating": <MWC>, "validating": <VWC>}"""
    c = Checker()
    with open(state_path, encoding="utf-8") as f:
        state = json.load(f)
    data = state["secret"].get("data", {})
    for key in ("mutating", "validating"):
        for hook in state[key]["webhooks"]:
            bundle = hook["clientConfig"].get("caBundle")
            c.eq(bundle, data.get("ca.crt"),
                 f"stored {key} webhook {hook.get('name')} caBundle equals the Secret's ca.crt")
    if all(k in data for k in ("ca.crt", "tls.crt", "tls.key")):
        verify_cert(*(base64.b64decode(data[k]) for k in ("ca.crt", "tls.crt", "tls.key")),
                    dns_names_for(state["service"], state["namespace"], state["clusterDomain"]), c, "installed Secret")
    else:
        c.check(False, f"installed Secret lacks ca.crt/tls.crt/tls.key: {sorted(data)}")
    c.finish("installed TLS")


def new_tls(before_path, after_path):
    """The opposite of same_tls: after a change of DNS names, every piece of TLS material was replaced."""
    c = Checker()
    with open(before_path, encoding="utf-8") as f:
        before = json.load(f)
    with open(after_path, encoding="utf-8") as f:
        after = json.load(f)
    for key in ("ca.crt", "tls.crt", "tls.key"):
        c.check(before["secret"]["data"].get(key) != after["secret"]["data"].get(key),
                f"Secret {key} was reused although the certificate's DNS names changed")
    c.finish("TLS regenerated for new DNS names")


def same_tls(before_path, after_path):
    c = Checker()
    with open(before_path, encoding="utf-8") as f:
        before = json.load(f)
    with open(after_path, encoding="utf-8") as f:
        after = json.load(f)
    for key in ("ca.crt", "tls.crt", "tls.key"):
        c.check(before["secret"]["data"].get(key) == after["secret"]["data"].get(key),
                f"Secret {key} changed across helm upgrade")
    for key in ("mutating", "validating"):
        bundles = [[h["clientConfig"].get("caBundle") for h in state[key]["webhooks"]] for state in (before, after)]
        c.check(bundles[0] == bundles[1], f"{key} caBundles changed across helm upgrade")
    c.finish("TLS reused across upgrade")


def main(argv):
    commands = {
        "render": (check_render, 4),
        "split": (split, 2),
        "pick": (pick, 2),
        "args": (controller_args, 1),
        "readme": (readme_lists_values, 2),
        "host-args": (host_args, 2),
        "installed-tls": (installed_tls, 1),
        "same-tls": (same_tls, 2),
        "new-tls": (new_tls, 2),
    }
    if len(argv) < 2 or argv[1] not in commands or len(argv) - 2 != commands[argv[1]][1]:
        sys.exit(__doc__)
    func, _ = commands[argv[1]]
    func(*argv[2:])


if __name__ == "__main__":
    main(sys.argv)
