#!/usr/bin/env python3
"""docker/check_compose.py - keeps docker/ and the README's "Docker" section in step.

scripts/compose-test.sh (t/032_compose.pl) builds and runs the stack; this is the quick check
that needs no engine, parsed rather than grepped:
  - docker-compose.yml: the services, published ports, environment, health checks, volumes
    and build files, against the README's service table and the entrypoint's variables;
  - the Kafka image is built from the jars of the tests' broker (test/kafka/pom.xml), and
    configured as the consumers expect (the topic, its listener, no automatic topic creation);
  - the Dockerfiles build with scripts/install-deps.sh and `make install` (what `make test`
    runs) and every file they COPY exists;
  - .dockerignore keeps secret-bearing files (docker/.env, other .env files, keys, make run's
    .run/ with postgres's password, build/ with Superset's secrets.env) out of the build
    context, so `COPY .` cannot put them into an image layer, and keeps what the builds COPY.

usage: check_compose.py [--root DIR] [--compose FILE] [--readme FILE]
Prints one line per check; exits 1 with the failures listed if any fails.
"""
import argparse
import base64
import os
import re
import shlex
import sys
import xml.etree.ElementTree as ET

import yaml

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)
    return ok


def markdown_table(text, section, header):
    """Rows (dicts) of the table under `## section` whose header row starts with `header`."""
    m = re.search(r"^## " + re.escape(section) + r"\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    if not m:
        return None
    lines = m.group(1).splitlines()
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[: len(header)] == header:
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                values = [c.strip() for c in row.strip().strip("|").split("|")]
                rows.append(dict(zip(cells, values)))
            return rows
    return None


def env_dict(service):
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
    return {k: ("" if v is None else str(v)) for k, v in env.items()}


def with_defaults(text):
    """`text` with each ${VAR:-default} replaced by its default (what compose uses when VAR is unset)."""
    return re.sub(r"\$\{[A-Z_][A-Z0-9_]*:-([^}]*)\}", r"\1", str(text))


def published_ports(service):
    """Host ports of `ports:` entries ("[ip:]host:container" strings or long syntax), by default."""
    out = {}
    for p in service.get("ports") or []:
        if isinstance(p, dict):
            out[with_defaults(p.get("published"))] = str(p.get("target"))
        else:
            parts = with_defaults(p).split(":")
            out[parts[-2]] = parts[-1].split("/")[0]
    return out


def dockerfile_instructions(path):
    """(INSTRUCTION, argument) pairs, continuation lines joined, comments dropped."""
    out, cur = [], ""
    with open(path) as f:
        for line in f:
            s = line.rstrip("\n")
            if not cur and (not s.strip() or s.lstrip().startswith("#")):
                continue
            if s.endswith("\\"):
                cur += s[:-1] + " "
                continue
            cur += s
            word, _, rest = cur.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            cur = ""
    return out


# Paths that hold or may hold secrets; none may reach a build context.
SECRET_PATHS = [
    "docker/.env", ".env", "docker/.env.local", "superset/.env.production",
    "certs/server.pem", "docker/tls/server.key", "test/kafka/broker.p12", "test/kafka/broker.jks",
    ".pgpass", ".run/pgpass", ".run/server/data/global/pg_control",
    "build/superset-home/secrets.env", ".git/config",
]


def dockerignore_regex(pattern):
    """A .dockerignore pattern as a regex, the way Docker matches it (moby/patternmatcher):
    `*` and `?` stay within a path component, `**` spans any number of them."""
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                out += "(?:.*/)?"
                i += 1
            else:
                out += ".*"
            continue
        out += {"*": "[^/]*", "?": "[^/]"}.get(c, re.escape(c))
        i += 1
    return re.compile("^" + out + "$")


def dockerignore_patterns(path):
    """(exclude?, regex) per line of a .dockerignore, in order."""
    pats = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            line = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
            pats.append((not negate, dockerignore_regex(line)))
    return pats


def ignored(pats, rel):
    """Whether Docker leaves `rel` out of the context: the last pattern that matches it or a
    directory above it decides."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    out = False
    for exclude, rx in pats:
        if any(rx.match(p) for p in prefixes):
            out = exclude
    return out


def check_dockerignore(root, copied):
    path = os.path.join(root, ".dockerignore")
    if not check(os.path.isfile(path), ".dockerignore exists (the build context is the repository root)"):
        return
    pats = dockerignore_patterns(path)
    for rel in SECRET_PATHS:
        check(ignored(pats, rel), f".dockerignore keeps {rel} out of the build context")
    for rel in copied:
        check(not ignored(pats, rel), f".dockerignore keeps {rel}, which a Dockerfile COPYs")


def check_dockerfile(root, context, dockerfile, must_run):
    path = os.path.join(context, dockerfile)
    if not check(os.path.isfile(path), f"{dockerfile} exists"):
        return
    ins = dockerfile_instructions(path)
    check(ins and ins[0][0] == "FROM" and all(a.startswith("debian:bookworm") for w, a in ins if w == "FROM"),
          f"{dockerfile} builds FROM debian:bookworm (the Debian the tests run on), every stage")
    for word, arg in ins:
        if word == "COPY" and "--from=" not in arg:
            srcs = [a for a in shlex.split(arg) if not a.startswith("--")][:-1]
            for src in srcs:
                check(os.path.exists(os.path.join(context, src)), f"{dockerfile}: COPY source {src} exists")
    for word, arg in ins:
        if word == "ENTRYPOINT":
            target = shlex.split(arg.strip("[]").replace(",", " "))[0]
            dests = [shlex.split(a)[-1] for w, a in ins if w == "COPY"]
            check(any(d == target or d.endswith("/" + target) for d in dests),
                  f"{dockerfile}: the ENTRYPOINT {target} is a file it COPYs in")
            check(("STOPSIGNAL", "SIGINT") in ins,
                  f"{dockerfile}: STOPSIGNAL SIGINT (a fast shutdown that does not wait for clients)")
    runs = " && ".join(arg for word, arg in ins if word == "RUN")
    for pattern, what in must_run:
        check(re.search(pattern, runs) is not None, f"{dockerfile} runs {what}")
    return ins


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--compose")
    ap.add_argument("--readme")
    args = ap.parse_args()
    root = args.root
    compose_path = args.compose or os.path.join(root, "docker", "docker-compose.yml")
    readme_path = args.readme or os.path.join(root, "README.md")

    with open(compose_path) as f:
        compose = yaml.safe_load(f)
    with open(readme_path) as f:
        readme = f.read()
    services = compose.get("services") or {}
    compose_dir = os.path.dirname(os.path.abspath(compose_path))

    # --- the README's service table -------------------------------------------------
    table = markdown_table(readme, "Docker", ["service", "port", "what"])
    if not check(table is not None, "README has a Docker section with a | service | port | what | table"):
        table = []
    documented = {r["service"]: r["port"] for r in table}
    check(set(documented) == set(services),
          f"README services {sorted(documented)} are the compose services {sorted(services)}")
    for name, service in services.items():
        ports = published_ports(service)
        want = documented.get(name)
        if want is None:
            continue
        if want in ("–", "-", ""):
            check(not ports, f"{name}: publishes no port, as the README says")
        else:
            check(set(ports) == {want}, f"{name}: publishes port {want} as the README says (compose: {sorted(ports)})")
        for p in service.get("ports") or []:
            if isinstance(p, str):
                check(p.startswith("127.0.0.1:"), f"{name}: port {p} is published on 127.0.0.1 only")

    # --- the postgres service and its entrypoint -----------------------------------
    pg = services.get("postgres", {})
    kafka = services.get("kafka", {})
    init = services.get("kafka-init", {})
    superset = services.get("superset", {})
    pg_env = env_dict(pg)
    var_table = markdown_table(readme, "Docker", ["variable", "default", "meaning"]) or []
    readme_vars = {r["variable"].strip("`") for r in var_table}
    with open(os.path.join(root, "docker", "entrypoint.sh")) as f:
        entrypoint = f.read()
    used = set(re.findall(r"\$\{?((?:POSTGRES|TWEETLAKE|PG)[A-Z_]+)", entrypoint)) - {"PG_MAJOR"}
    check(bool(readme_vars) and used <= readme_vars,
          f"every variable the entrypoint reads is in the README's variable table (missing: {sorted(used - readme_vars)})")
    check(set(pg_env) <= used,
          f"every postgres environment variable is one the entrypoint reads (unknown: {sorted(set(pg_env) - used)})")
    check("POSTGRES_PASSWORD" in pg_env and ":?" in pg_env["POSTGRES_PASSWORD"],
          "postgres: POSTGRES_PASSWORD comes from the environment and is required (${VAR:?})")
    check(os.access(os.path.join(root, "docker", "entrypoint.sh"), os.X_OK), "docker/entrypoint.sh is executable")

    # --- Kafka -----------------------------------------------------------------------
    pom = ET.parse(os.path.join(root, "test", "kafka", "pom.xml")).getroot()
    ns = {"m": pom.tag.split("}")[0].strip("{")} if pom.tag.startswith("{") else {}
    version = pom.find("m:properties/m:kafka.version" if ns else "properties/kafka.version", ns).text
    for name in ("kafka", "kafka-init"):
        check(services.get(name, {}).get("image") == f"tweetlake/kafka:{version}",
              f"{name}: image tweetlake/kafka:{version}, the version of the tests' broker (test/kafka/pom.xml)")
    check((kafka.get("build") or {}).get("dockerfile") == "docker/kafka.Dockerfile",
          "kafka: built from docker/kafka.Dockerfile (the jars of test/kafka/pom.xml)")
    # Two services building one image build it twice, at once (podman-compose builds every
    # service in parallel); kafka-init runs the image kafka builds, and no registry has it.
    check("build" not in init and init.get("pull_policy") == "never",
          "kafka-init: runs the image kafka builds, neither building it again nor pulling it (pull_policy: never)")
    k_env = env_dict(kafka)
    check(k_env.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE") == "false", "kafka: topics are not created automatically")
    check("broker" in k_env.get("KAFKA_PROCESS_ROLES", "") and "controller" in k_env.get("KAFKA_PROCESS_ROLES", ""),
          "kafka: KRaft, one node being broker and controller")
    cid = k_env.get("CLUSTER_ID", "")
    try:
        ok = len(base64.urlsafe_b64decode(cid + "=" * (-len(cid) % 4))) == 16
    except Exception:
        ok = False
    check(ok, f"kafka: CLUSTER_ID {cid!r} is a Kafka Uuid (16 bytes, base64url)")
    advertised = dict(reversed(l.split("://", 1)) for l in with_defaults(k_env.get("KAFKA_ADVERTISED_LISTENERS", "")).split(",") if "://" in l)
    brokers = pg_env.get("TWEETLAKE_BROKERS", "")
    check(brokers in advertised and advertised[brokers] == k_env.get("KAFKA_INTER_BROKER_LISTENER_NAME"),
          f"postgres: TWEETLAKE_BROKERS {brokers!r} is kafka's advertised in-network listener")
    host_listener = [a for a, l in advertised.items() if a.startswith("localhost:")]
    check(len(host_listener) == 1 and host_listener[0].split(":")[1] in published_ports(kafka),
          "kafka: the listener advertised to the host is the published port")
    cmd = init.get("command") or []
    cmd = shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]
    # a shell script (`bash -c "..."`): its words
    if len(cmd) == 3 and cmd[1] == "-c":
        cmd = shlex.split(cmd[2].replace(";", " ; "))
    opt = lambda o: cmd[cmd.index(o) + 1] if o in cmd and cmd.index(o) + 1 < len(cmd) else None
    check(opt("--topic") == pg_env.get("TWEETLAKE_TOPIC", "tweets"), "kafka-init creates the topic the workers use")
    check(opt("--bootstrap-server") == brokers, "kafka-init talks to the broker the workers use")
    check("--if-not-exists" in cmd, "kafka-init can run again (--if-not-exists)")
    check(opt("--partitions") == "4", "kafka-init creates 4 partitions")
    check((pg.get("depends_on") or {}).get("kafka-init", {}).get("condition") == "service_completed_successfully",
          "postgres starts after the topic exists")
    check((init.get("depends_on") or {}).get("kafka", {}).get("condition") == "service_healthy",
          "kafka-init waits for a healthy broker")

    # --- Superset --------------------------------------------------------------------
    s_env = env_dict(superset)
    with open(os.path.join(root, "scripts", "superset.sh")) as f:
        superset_sh = f.read()
    # its variables, the secrets it takes (`secret NAME`), and libpq's PGPASSWORD
    known = (set(re.findall(r"\b([A-Z][A-Z0-9_]+)(?==|:-|\})", superset_sh))
             | set(re.findall(r"^\s*secret ([A-Z][A-Z0-9_]+)", superset_sh, re.M)) | {"PGPASSWORD"})
    check(set(s_env) <= known, f"superset: every environment variable is one scripts/superset.sh reads (unknown: {sorted(set(s_env) - known)})")
    check(s_env.get("PGHOST") in services, "superset: PGHOST is a compose service")
    check(s_env.get("PGPORT") == pg_env.get("PGPORT", "5432"), "superset: PGPORT is the postgres port")
    check(s_env.get("SUPERSET_PORT") in published_ports(superset).values(), "superset: SUPERSET_PORT is the published container port")
    check(s_env.get("SUPERSET_BIND") == "0.0.0.0", "superset: listens on the container network")
    for secret in ("SUPERSET_SECRET_KEY", "SUPERSET_ADMIN_PASSWORD", "TWEETLAKE_READER_PASSWORD", "PGPASSWORD"):
        check(":?" in s_env.get(secret, ""), f"superset: {secret} comes from the environment and is required (${{VAR:?}})")
    check((superset.get("depends_on") or {}).get("postgres", {}).get("condition") == "service_healthy",
          "superset starts after postgres is healthy")

    # --- secrets, health checks, volumes -------------------------------------------------
    raw = open(compose_path).read()
    required = set(re.findall(r"\$\{([A-Z_]+):\?", raw))
    example = os.path.join(compose_dir, "example.env")
    listed = set()
    if os.path.exists(example):
        listed = {l.split("=", 1)[0].strip() for l in open(example) if "=" in l and not l.lstrip().startswith("#")}
    check(required <= listed, f"docker/example.env lists every required variable (missing: {sorted(required - listed)})")
    for name, service in services.items():
        if name == "kafka-init":
            continue
        hc = service.get("healthcheck") or {}
        check(bool(hc.get("test")), f"{name}: has a health check")
    volumes = set(compose.get("volumes") or {})
    mounted = set()
    for name, service in services.items():
        for v in service.get("volumes") or []:
            src = v.split(":")[0] if isinstance(v, str) else v.get("source")
            if not src.startswith((".", "/")):
                mounted.add(src)
    check(volumes and mounted == volumes, f"named volumes {sorted(volumes)} are the ones mounted {sorted(mounted)}")
    check(all(("volumes" in s) for n, s in services.items() if n in ("postgres", "kafka", "superset")),
          "postgres, kafka and superset keep their data in volumes")

    # --- the Dockerfiles -------------------------------------------------------------
    copied = {"Makefile", "tweetlake.control", "src/tweetlake.c"}
    for name, must_run in (
        ("postgres", [(r"scripts/install-deps\.sh(?!\s+--)", "scripts/install-deps.sh"),
                      (r"make .*\binstall\b", "make install")]),
        ("superset", [(r"scripts/install-deps\.sh", "scripts/install-deps.sh"),
                      (r"scripts/superset\.sh install", "scripts/superset.sh install")]),
        ("kafka", [(r"mvn .*package", "mvn package (test/kafka/pom.xml)")]),
    ):
        build = services.get(name, {}).get("build") or {}
        context = os.path.normpath(os.path.join(compose_dir, build.get("context", ".")))
        check(context == os.path.normpath(root), f"{name}: builds from the repository root")
        ins = check_dockerfile(root, context, build.get("dockerfile", "Dockerfile"), must_run) or []
        for word, arg in ins:
            if word == "COPY" and "--from=" not in arg:
                srcs = [a for a in shlex.split(arg) if not a.startswith("--")][:-1]
                copied |= {os.path.normpath(a) for a in srcs} - {"."}
    check_dockerignore(root, sorted(copied))

    print(f"check_compose: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
