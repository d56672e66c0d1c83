#!/usr/bin/python3
"""Validates numverify's deployment files (called by deploy/check.sh).

  check_manifests.py compose RENDERED.yml
  check_manifests.py k8s OVERLAY RENDERED.yaml        (OVERLAY: base, dev, production)
  check_manifests.py prometheus FILE.yml [compose|k8s]
  check_manifests.py cli NUMVERIFY_BINARY PENDING_FILE RENDERED...   (compose and k8s renderings)
  check_manifests.py static-elf BINARY

Each prints what it checked and exits 1 listing every problem found.
"""
import re
import struct
import subprocess
import sys

import yaml

problems = []


def fail(msg):
    problems.append(msg)


def done(what):
    if problems:
        print(f"  FAIL {what}:")
        for p in dict.fromkeys(problems):
            print(f"       - {p}")
        sys.exit(1)
    print(f"  ok   {what}")


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


# ---------------------------------------------------------------- compose

SERVERS = {"authz": 9090, "resource": 9091, "network": 9092}
# /metrics is served only on this port (NUMVERIFY_METRICS_ADDR), never on the
# servers' own ports (no NUMVERIFY_METRICS_TOKEN in the shipped files).
METRICS_PORT = 9100
MIN_ADMIN_TOKEN = 32


def check_compose(path):
    docs = load_all(path)
    if len(docs) != 1:
        fail(f"expected one document, got {len(docs)}")
        return done("compose")
    c = docs[0]
    services = c.get("services", {})
    want = {"postgres", "migrate", "authz", "resource", "network", "sp", "device"}
    missing = want - set(services)
    if missing:
        fail(f"missing services {sorted(missing)}")

    pg = services.get("postgres", {})
    if not str(pg.get("image", "")).startswith("postgres:15"):
        fail("postgres: image is not postgres:15")
    if "pg_isready" not in " ".join(map(str, pg.get("healthcheck", {}).get("test", []))):
        fail("postgres: healthcheck is not pg_isready")
    if not any(str(v).split(":")[0] in c.get("volumes", {}) for v in pg.get("volumes", [])):
        fail("postgres: data is not on a named volume")

    def dep(svc, on, cond):
        d = services.get(svc, {}).get("depends_on", {})
        if not isinstance(d, dict) or d.get(on, {}).get("condition") != cond:
            fail(f"{svc}: does not depend on {on} with condition {cond}")

    dep("migrate", "postgres", "service_healthy")
    if services.get("migrate", {}).get("command") != ["migrate", "up"]:
        fail("migrate: command is not `migrate up`")
    for name, port in SERVERS.items():
        s = services.get(name, {})
        dep(name, "migrate", "service_completed_successfully")
        if s.get("command") != ["serve", name]:
            fail(f"{name}: command is not `serve {name}`")
        test = s.get("healthcheck", {}).get("test", [])
        if test[:3] != ["CMD", "/numverify", "healthcheck"] or f"http://127.0.0.1:{port}/readyz" not in test:
            fail(f"{name}: healthcheck is not `/numverify healthcheck --url http://127.0.0.1:{port}/readyz`")
        env = s.get("environment", {})
        if env.get("NUMVERIFY_TRUSTED_PROXIES", "") not in ("", None):
            fail(f"{name}: NUMVERIFY_TRUSTED_PROXIES is not empty")
        if not s.get("read_only") or "ALL" not in s.get("cap_drop", []):
            fail(f"{name}: not read_only with cap_drop ALL")
        if env.get("NUMVERIFY_METRICS_ADDR") != f":{METRICS_PORT}":
            fail(f"{name}: NUMVERIFY_METRICS_ADDR is not :{METRICS_PORT} (what Prometheus scrapes)")
        if env.get("NUMVERIFY_METRICS_TOKEN"):
            fail(f"{name}: NUMVERIFY_METRICS_TOKEN puts /metrics on the public port")
        for p in s.get("ports", []):
            target = p.get("target") if isinstance(p, dict) else str(p).split(":")[-1]
            if str(target) == str(METRICS_PORT):
                fail(f"{name}: the metrics port is published ({p})")
    admin = str(services.get("network", {}).get("environment", {}).get("NUMVERIFY_NETWORK_ADMIN_TOKEN", ""))
    if len(admin) < MIN_ADMIN_TOKEN:
        fail(f"network: NUMVERIFY_NETWORK_ADMIN_TOKEN shorter than {MIN_ADMIN_TOKEN} characters (the server refuses it)")
    for p in services.get("network", {}).get("ports", []):
        ip = p.get("host_ip") if isinstance(p, dict) else str(p).rsplit(":", 2)[0]
        if ip not in ("127.0.0.1",):
            fail(f"network: admin port published beyond loopback ({p})")
    for p in services.get("sp", {}).get("ports", []):
        pub = p.get("published") if isinstance(p, dict) else str(p).split(":")[-2]
        if str(pub) != "8080":
            fail(f"sp: not published on 8080 ({p})")
    # What the first real run found (issue 13): resource needs authz's keys
    # and discovery; every published port on the host's loopback only; an
    # issuer authz accepts (http only on a loopback name); pg_isready over TCP.
    dep("resource", "authz", "service_healthy")
    for name, s in services.items():
        for p in s.get("ports", []):
            ip = p.get("host_ip") if isinstance(p, dict) else (str(p).rsplit(":", 2)[0] if str(p).count(":") == 2 else "")
            if ip != "127.0.0.1":
                fail(f"{name}: port published beyond the host's loopback ({p})")
    for name in ("authz", "resource", "network", "sp"):
        env = services.get(name, {}).get("environment", {})
        for var in ("NUMVERIFY_ISSUER", "NUMVERIFY_SP_ISSUER"):
            iss = str(env.get(var, ""))
            host = iss.split("//", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
            if iss.startswith("http://") and not (host in ("localhost", "127.0.0.1") or host.endswith(".localhost")):
                fail(f"{name}: {var} {iss} is plain http on a non-loopback name: authz refuses to start")
    if "-h 127.0.0.1" not in " ".join(map(str, pg.get("healthcheck", {}).get("test", []))):
        fail("postgres: pg_isready not over TCP (-h 127.0.0.1): the socket answers during initdb")
    dep("device", "sp", "service_healthy")
    dep("device", "network", "service_healthy")
    for name, s in services.items():
        if name in ("postgres", "prometheus"):
            continue
        if s.get("image") != "numverify:dev" or s.get("build", {}).get("dockerfile") != "deploy/Dockerfile":
            fail(f"{name}: not built from deploy/Dockerfile as numverify:dev")
    subnets = [cfg.get("subnet") for n in c.get("networks", {}).values()
               for cfg in (n or {}).get("ipam", {}).get("config", [])]
    if not subnets:
        fail("no network with a fixed subnet")
    done("compose: services, dependencies, health checks, subnet, exposure")


# ---------------------------------------------------------------- kubernetes

def containers_of(obj):
    spec = obj.get("spec", {})
    if obj["kind"] == "Job":
        pod = spec.get("template", {}).get("spec", {})
    else:
        pod = spec.get("template", {}).get("spec", {})
    return pod, pod.get("containers", []) + pod.get("initContainers", [])


def check_k8s(overlay, path):
    docs = load_all(path)
    kinds = {}
    by_kind_name = {}
    for d in docs:
        for key in ("apiVersion", "kind", "metadata"):
            if key not in d:
                fail(f"an object lacks {key}: {str(d)[:80]}")
        k, n = d.get("kind"), d.get("metadata", {}).get("name")
        kinds[k] = kinds.get(k, 0) + 1
        if (k, n) in by_kind_name:
            fail(f"duplicate {k}/{n}")
        by_kind_name[(k, n)] = d

    names = lambda kind: {n for (k, n) in by_kind_name if k == kind}
    expect = {
        ("Deployment", "numverify-authz"), ("Deployment", "numverify-resource"), ("Deployment", "numverify-network"),
        ("Service", "numverify-authz"), ("Service", "numverify-resource"), ("Service", "numverify-network"),
        ("Job", "numverify-migrate"), ("ConfigMap", "numverify-config"),
        ("HorizontalPodAutoscaler", "numverify-authz"), ("HorizontalPodAutoscaler", "numverify-resource"),
        ("PodDisruptionBudget", "numverify-authz"), ("PodDisruptionBudget", "numverify-resource"),
        ("NetworkPolicy", "numverify-network-admin-internal"),
    }
    for k, n in sorted(expect - set(by_kind_name)):
        fail(f"missing {k}/{n}")
    if overlay == "production":
        for k, n in [("Ingress", "numverify"), ("Namespace", "numverify")]:
            if (k, n) not in by_kind_name:
                fail(f"missing {k}/{n}")
        if "Secret" in kinds:
            fail("production renders a Secret: secrets must come from the operator, not the manifests")
        check_k8s_cnpg(by_kind_name)
    if overlay == "base" and "Secret" in kinds:
        fail("base renders a Secret")
    if overlay == "dev":
        for (k, n), d in by_kind_name.items():
            if k == "Secret" and d.get("metadata", {}).get("labels", {}).get("numverify.io/dev-only") != "true":
                fail(f"dev Secret {n} is not labelled numverify.io/dev-only")
    if overlay != "base":
        for (k, n), d in by_kind_name.items():
            if k != "Namespace" and not d["metadata"].get("namespace"):
                fail(f"{k}/{n} has no namespace")

    secrets = {n: set((by_kind_name[("Secret", n)].get("data") or {}).keys()) for n in names("Secret")}
    configmaps = names("ConfigMap")
    pods_labels = []
    for (k, n), d in by_kind_name.items():
        if k not in ("Deployment", "Job"):
            continue
        pod, containers = containers_of(d)
        labels = d["spec"]["template"]["metadata"].get("labels", {})
        pods_labels.append(labels)
        if k == "Deployment":
            sel = d["spec"].get("selector", {}).get("matchLabels", {})
            if not sel or any(labels.get(a) != b for a, b in sel.items()):
                fail(f"{k}/{n}: selector does not match the pod labels")
        psc = pod.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True:
            fail(f"{k}/{n}: pod securityContext.runAsNonRoot is not true")
        if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            fail(f"{k}/{n}: seccompProfile is not RuntimeDefault")
        if pod.get("automountServiceAccountToken") is not False:
            fail(f"{k}/{n}: service account token is mounted")
        for c in containers:
            where = f"{k}/{n} container {c.get('name')}"
            sc = c.get("securityContext", {})
            if sc.get("readOnlyRootFilesystem") is not True:
                fail(f"{where}: readOnlyRootFilesystem is not true")
            if sc.get("allowPrivilegeEscalation") is not False:
                fail(f"{where}: allowPrivilegeEscalation is not false")
            if sc.get("capabilities", {}).get("drop") != ["ALL"]:
                fail(f"{where}: capabilities do not drop ALL")
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in res.get(part, {}):
                        fail(f"{where}: no {part}.{r}")
            for e in c.get("env", []):
                if "value" in e and re.search(r"SECRET|TOKEN|PASSWORD|DATABASE_URL", e["name"]):
                    fail(f"{where}: {e['name']} is inlined, not a secretKeyRef")
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref and overlay == "dev":
                    if ref["name"] not in secrets:
                        fail(f"{where}: secretKeyRef to a Secret not rendered: {ref['name']}")
                    elif ref["key"] not in secrets[ref["name"]]:
                        fail(f"{where}: Secret {ref['name']} has no key {ref['key']}")
            for ef in c.get("envFrom", []):
                cm = ef.get("configMapRef", {}).get("name")
                if cm and cm not in configmaps:
                    fail(f"{where}: envFrom a ConfigMap not rendered: {cm}")
            if k == "Deployment" and n in ("numverify-authz", "numverify-resource", "numverify-network"):
                if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
                    fail(f"{where}: readinessProbe is not GET /readyz")
                if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
                    fail(f"{where}: livenessProbe is not GET /healthz")
                if c.get("image", "").split(":")[0] in ("", "numverify") and overlay == "production":
                    fail(f"{where}: image not set by the overlay")
    for (k, n), d in by_kind_name.items():
        if k == "Service":
            sel = d["spec"].get("selector", {})
            if not any(all(l.get(a) == b for a, b in sel.items()) for l in pods_labels):
                fail(f"Service/{n}: selects no pod")
        if k in ("HorizontalPodAutoscaler",):
            t = d["spec"]["scaleTargetRef"]
            if (t["kind"], t["name"]) not in by_kind_name:
                fail(f"{k}/{n}: targets a missing {t['kind']}/{t['name']}")
            if d["spec"].get("minReplicas", 1) > d["spec"]["maxReplicas"]:
                fail(f"{k}/{n}: minReplicas > maxReplicas")
        if k == "PodDisruptionBudget":
            sel = d["spec"]["selector"]["matchLabels"]
            if not any(all(l.get(a) == b for a, b in sel.items()) for l in pods_labels):
                fail(f"{k}/{n}: selects no pod")
    cm = by_kind_name.get(("ConfigMap", "numverify-config"), {}).get("data", {})
    check_k8s_metrics(by_kind_name, cm)
    if overlay == "dev":
        import base64
        token = (by_kind_name.get(("Secret", "numverify"), {}).get("data") or {}).get("network-admin-token")
        for (k, n), d in by_kind_name.items():
            if k == "Secret" and n.startswith("numverify") and "network-admin-token" in (d.get("data") or {}):
                token = d["data"]["network-admin-token"]
        if token is not None and len(base64.b64decode(token)) < MIN_ADMIN_TOKEN:
            fail(f"dev network-admin-token shorter than {MIN_ADMIN_TOKEN} characters (the server refuses it)")
    for key in ("NUMVERIFY_ISSUER", "NUMVERIFY_TRUSTED_PROXIES", "NUMVERIFY_CLIENT_ADDRESS_FROM", "NUMVERIFY_ACCESS_TOKEN_FORMAT", "NUMVERIFY_RESOURCE_TOKEN_FORMAT"):
        if key not in cm:
            fail(f"ConfigMap numverify-config lacks {key}")
    if overlay == "production" and not cm.get("NUMVERIFY_ISSUER", "").startswith("https://"):
        fail("production issuer is not https")
    iss = cm.get("NUMVERIFY_ISSUER", "")
    host = iss.split("//", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
    if iss.startswith("http://") and not (host in ("localhost", "127.0.0.1") or host.endswith(".localhost")):
        fail(f"issuer {iss}: plain http on a non-loopback name, which authz refuses (it would not start)")
    # serve authz refuses trusted proxies with the peer as source, and a proxy
    # source without trusted proxies.
    source = cm.get("NUMVERIFY_CLIENT_ADDRESS_FROM") or "peer"
    if (source == "peer") != (not cm.get("NUMVERIFY_TRUSTED_PROXIES")):
        fail(f"NUMVERIFY_CLIENT_ADDRESS_FROM={source} does not match NUMVERIFY_TRUSTED_PROXIES (authz would not start)")
    if cm.get("NUMVERIFY_CLIENT_PORT_HEADER", "").lower() == "x-forwarded-port":
        fail("NUMVERIFY_CLIENT_PORT_HEADER is X-Forwarded-Port (the proxy's listener port)")
    summary = ", ".join(f"{v} {k}" for k, v in sorted(kinds.items()))
    done(f"k8s {overlay}: {summary}")


def check_k8s_cnpg(by_kind_name):
    """Production's CloudNativePG Cluster: 3 instances, synchronous
    replication, and every workload's DATABASE_URL from its app Secret (whose
    uri names the -rw Service, the primary)."""
    clusters = [d for (k, n), d in by_kind_name.items() if k == "Cluster" and d["apiVersion"].startswith("postgresql.cnpg.io/")]
    if len(clusters) != 1:
        fail(f"production: want one CloudNativePG Cluster, found {len(clusters)}")
        return  # fail() only records: without a Cluster there is nothing to check
    c = clusters[0]
    name, spec = c["metadata"]["name"], c.get("spec", {})
    if spec.get("instances", 1) < 3:
        fail(f"Cluster/{name}: fewer than 3 instances")
    sync = spec.get("postgresql", {}).get("synchronous", {})
    if sync.get("method") not in ("any", "first") or sync.get("number", 0) < 1:
        fail(f"Cluster/{name}: no synchronous replication (spec.postgresql.synchronous method any|first, number >= 1)")
    if sync.get("dataDurability", "required") != "required":
        fail(f"Cluster/{name}: dataDurability is not required (a failover could lose acknowledged commits)")
    for (k, n), d in by_kind_name.items():
        if k not in ("Deployment", "Job"):
            continue
        for ct in containers_of(d)[1]:
            for e in ct.get("env", []):
                if e["name"] != "DATABASE_URL":
                    continue
                ref = e.get("valueFrom", {}).get("secretKeyRef", {})
                if (ref.get("name"), ref.get("key")) != (name + "-app", "uri"):
                    fail(f"{k}/{n} container {ct.get('name')}: DATABASE_URL is not the Cluster's {name}-app uri (the -rw Service)")


def check_k8s_metrics(by_kind_name, cm):
    """/metrics only on the metrics port: set in the ConfigMap, scraped there,
    in no Service and routed by no Ingress."""
    if cm.get("NUMVERIFY_METRICS_ADDR") != f":{METRICS_PORT}":
        fail(f"ConfigMap numverify-config: NUMVERIFY_METRICS_ADDR is not :{METRICS_PORT}")
    if "NUMVERIFY_METRICS_TOKEN" in cm:
        fail("ConfigMap numverify-config sets NUMVERIFY_METRICS_TOKEN: /metrics would be on the public ports")
    for (k, n), d in by_kind_name.items():
        if k == "Deployment" and n in ("numverify-authz", "numverify-resource", "numverify-network"):
            ann = d["spec"]["template"]["metadata"].get("annotations", {})
            if ann.get("prometheus.io/port") != str(METRICS_PORT):
                fail(f"{k}/{n}: prometheus.io/port is not {METRICS_PORT}")
        if k == "Service":
            for p in d["spec"].get("ports", []):
                if p.get("port") == METRICS_PORT or p.get("targetPort") in (METRICS_PORT, "metrics"):
                    fail(f"Service/{n} exposes the metrics port")
        if k == "Ingress":
            for rule in d["spec"].get("rules", []):
                for path in (rule.get("http") or {}).get("paths", []):
                    p = path.get("path", "/")
                    port = path.get("backend", {}).get("service", {}).get("port", {})
                    if p.startswith("/metrics") or port.get("number") == METRICS_PORT or port.get("name") == "metrics":
                        fail(f"Ingress/{n} routes /metrics ({p} -> {port})")


# ---------------------------------------------------------------- prometheus

def check_prometheus(path, flavour):
    docs = load_all(path)
    if len(docs) != 1 or not isinstance(docs[0], dict):
        fail("not one YAML mapping")
        return done(f"prometheus {path}")
    jobs = {j.get("job_name"): j for j in docs[0].get("scrape_configs", [])}
    job = jobs.get("numverify")
    if not job:
        fail("no scrape_configs job numverify")
    elif flavour == "compose":
        targets = {t for sc in job.get("static_configs", []) for t in sc.get("targets", [])}
        want = {f"{n}:{METRICS_PORT}" for n in SERVERS}
        if targets != want:
            fail(f"targets {sorted(targets)} != {sorted(want)}")
    else:
        if not job.get("kubernetes_sd_configs"):
            fail("no kubernetes_sd_configs")
        for rc in job.get("relabel_configs", []):
            if "regex" in rc:
                try:
                    re.compile(str(rc["regex"]))
                except re.error as e:
                    fail(f"bad regex {rc['regex']!r}: {e}")
    done(f"prometheus {path.split('/')[-1]} ({flavour})")


# ---------------------------------------------------------------- CLI contract

def cli_model(binary):
    out = subprocess.run([binary, "help"], capture_output=True, text=True).stdout
    commands = {}
    for line in out.splitlines():
        m = re.match(r"^  (\S+(?: \S+)*?)\s{2,}", line)
        if m:
            commands[m.group(1)] = None
    for name in commands:
        h = subprocess.run([binary, *name.split(), "--help"], capture_output=True, text=True)
        text = h.stdout + h.stderr
        flags = set(re.findall(r"^  --([a-z0-9-]+)", text, re.M))
        envs = set(re.findall(r"\[([A-Z0-9_]+)\]", text))
        commands[name] = (flags, envs)
    return commands


def split_command(commands, args):
    best = None
    for name in commands:
        words = name.split()
        if args[:len(words)] == words and (best is None or len(words) > len(best.split())):
            best = name
    return best


def uses_from_renderings(paths):
    """Yields (where, args, env names) for every numverify invocation."""
    for path in paths:
        for d in load_all(path):
            if "services" in d:  # compose
                for name, s in d["services"].items():
                    if s.get("image") != "numverify:dev":
                        continue
                    env = set((s.get("environment") or {}).keys())
                    yield f"compose {name}", list(map(str, s.get("command") or [])), env
                    test = (s.get("healthcheck") or {}).get("test") or []
                    if test[:2] == ["CMD", "/numverify"]:
                        yield f"compose {name} healthcheck", list(map(str, test[2:])), set()
            elif d.get("kind") in ("Deployment", "Job"):
                pod = d["spec"]["template"]["spec"]
                for c in pod.get("containers", []):
                    if not c.get("image", "").split("/")[-1].startswith("numverify"):
                        continue
                    env = {e["name"] for e in c.get("env", [])}
                    yield f"{path.split('/')[-1]} {d['metadata']['name']}", list(map(str, c.get("args", []))), env
            elif d.get("kind") == "ConfigMap" and d["metadata"]["name"] == "numverify-config":
                # Read by the servers through envFrom: each key must be one of theirs.
                yield f"{path.split('/')[-1]} ConfigMap", ["serve"], set(d.get("data", {}).keys())


def check_cli(binary, pending_path, paths):
    commands = cli_model(binary)
    pending = set()
    with open(pending_path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                pending.add(tuple(line.split(None, 1)))
    used_pending = set()
    for where, args, env in uses_from_renderings(paths):
        name = split_command(commands, args)
        if name is None:
            key = ("command", " ".join(a for a in args if not a.startswith("-"))[:40])
            # A pending command may be given as its first words.
            match = [p for p in pending if p[0] == "command" and args[:len(p[1].split())] == p[1].split()]
            if match:
                used_pending.update(match)
                continue
            fail(f"{where}: `numverify {' '.join(args)}`: no such command")
            continue
        flags, envs = commands[name]
        # The servers share one flag namespace: `serve` reads every server flag.
        env_cmd = "serve" if name.startswith("serve") else name
        env_ok = commands[env_cmd][1] if env_cmd in commands else envs
        for a in args[len(name.split()):]:
            if a.startswith("--"):
                flag = a[2:].split("=", 1)[0]
                if flag in ("help",) or flag in flags:
                    continue
                if ("flag", f"{name} --{flag}") in pending:
                    used_pending.add(("flag", f"{name} --{flag}"))
                    continue
                fail(f"{where}: `numverify {name}` has no flag --{flag}")
        for e in sorted(env):
            if not (e.startswith("NUMVERIFY_") or e == "DATABASE_URL"):
                continue
            if e in env_ok:
                continue
            if ("env", f"{env_cmd} {e}") in pending:
                used_pending.add(("env", f"{env_cmd} {e}"))
                continue
            fail(f"{where}: `numverify {env_cmd}` reads no {e}")
    # Pending entries the binary now provides: remove them from the list.
    for kind, what in sorted(pending):
        stale = False
        if kind == "command":
            stale = what in commands
        elif kind == "flag":
            cmd, flag = what.rsplit(" ", 1)
            stale = cmd in commands and flag[2:] in commands[cmd][0]
        elif kind == "env":
            cmd, e = what.rsplit(" ", 1)
            stale = cmd in commands and e in commands[cmd][1]
        if stale:
            print(f"  note pending entry now provided by the binary, remove it from {pending_path}: {kind} {what}")
        elif (kind, what) not in used_pending:
            print(f"  note pending entry no longer used by any manifest: {kind} {what}")
    n_pending = len([p for p in pending if p in used_pending])
    done(f"CLI contract: every command, flag and variable the manifests use exists in the binary "
         f"({len(commands)} commands; {n_pending} still pending in {pending_path.split('/')[-1]})")


# ---------------------------------------------------------------- static binary

def check_static_elf(path):
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            fail("not a 64-bit ELF")
            return done("static binary")
        endian = "<" if head[5] == 1 else ">"
        phoff, = struct.unpack(endian + "Q", head[32:40])
        phentsize, phnum = struct.unpack(endian + "HH", head[54:58])
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            ptype, = struct.unpack(endian + "I", f.read(4))
            if ptype == 3:  # PT_INTERP: dynamically linked
                fail("has an ELF interpreter: not static (CGO_ENABLED=0?)")
            if ptype == 2:  # PT_DYNAMIC
                fail("has a dynamic section: not static")
    done("static binary (no ELF interpreter, no dynamic section)")


def main():
    mode = sys.argv[1]
    if mode == "compose":
        check_compose(sys.argv[2])
    elif mode == "k8s":
        check_k8s(sys.argv[2], sys.argv[3])
    elif mode == "prometheus":
        check_prometheus(sys.argv[2], sys.argv[3])
    elif mode == "cli":
        check_cli(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif mode == "static-elf":
        check_static_elf(sys.argv[2])
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
