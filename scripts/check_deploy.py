"""The checks of scripts/check-deploy (run through it: it installs what this needs)."""

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import yaml

CHART = Path("deploy/helm/tollgate")
KUBERNETES_VERSION = "1.30.0"
SECRETS = {
    "APP_ID": "1",
    "PRIVATE_KEY": "placeholder",
    "WEBHOOK_SECRET": "placeholder",
    "DATABASE_URL": "postgres://tollgate@db/tollgate",
}

# Value sets the chart must render for: defaults (with a generated Secret), everything switched
# on (an existing Secret, ServiceMonitor, Ingress), and fixed replica counts without autoscaling.
VARIANTS = {
    "defaults": {"secret": {"values": SECRETS}},
    "everything on": {
        "secret": {"existingSecret": "tollgate-credentials"},
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
        "ingress": {"enabled": True, "className": "nginx", "tlsSecretName": "tollgate-tls"},
        "imagePullSecrets": [{"name": "registry"}],
    },
    "fixed replicas": {
        "secret": {"values": SECRETS},
        "web": {"autoscaling": {"enabled": False}, "replicas": 3},
        "worker": {"autoscaling": {"enabled": False}, "replicas": 5},
        "migrations": {"enabled": False},
    },
}

failures = []


def fail(message):
    failures.append(message)


def lint():
    report = helm.lint(str(CHART), values=VARIANTS["defaults"])
    for error in report.get("errors") or []:
        fail(f"helm lint: {error}")
    for message in report.get("messages") or []:
        # Severity 1 is information ("icon is recommended"); warnings and errors fail.
        if message.get("severity", 0) >= 2:
            fail(f"helm lint: {message.get('path')}: {message.get('error')}")


def render(values):
    with helm.Chart.load(str(CHART)) as chart:
        files = chart.render(values, name="tg", namespace="tollgate")
    documents = []
    for name, text in sorted(files.items()):
        if not name.endswith(".yaml"):
            continue
        for document in yaml.safe_load_all(text):
            if document:
                documents.append((name, document))
    return documents


def validate_schema(variant, name, document):
    kind = document.get("kind")
    if document.get("apiVersion") == "monitoring.coreos.com/v1":
        # A custom resource: its schema is not part of Kubernetes; check what Prometheus reads.
        endpoints = document.get("spec", {}).get("endpoints") or []
        if not endpoints or endpoints[0].get("path") != "/metrics" or endpoints[0].get("port") != "http":
            fail(f"{variant}: {name}: the ServiceMonitor must scrape port http at /metrics")
        return
    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        fail(f"{variant}: {name}: {kind}: {error.message} at {'/'.join(map(str, error.path))}")
    except kubernetes_validate.SchemaNotFoundError as error:
        fail(f"{variant}: {name}: no schema for {kind}: {error}")


def by_kind(documents, kind):
    return {d["metadata"]["name"]: d for _, d in documents if d.get("kind") == kind}


def container(workload):
    return workload["spec"]["template"]["spec"]["containers"][0]


def check_chart_promises(variant, values, documents):
    deployments = by_kind(documents, "Deployment")
    for role in ("web", "worker"):
        deployment = deployments.get(f"tg-tollgate-{role}")
        if deployment is None:
            fail(f"{variant}: no {role} Deployment")
            continue
        app = container(deployment)
        if app["args"][:3] != ["serve", "--role", role] or "--no-migrate" not in app["args"]:
            fail(f"{variant}: the {role} Deployment must run `serve --role {role} --no-migrate`")
        if app["livenessProbe"]["httpGet"]["path"] != "/healthz":
            fail(f"{variant}: {role}: liveness probe must call /healthz")
        if app["readinessProbe"]["httpGet"]["path"] != "/readyz":
            fail(f"{variant}: {role}: readiness probe must call /readyz")
        pod = deployment["spec"]["template"]["spec"]
        if not pod["securityContext"].get("runAsNonRoot") or pod["securityContext"].get("runAsUser") == 0:
            fail(f"{variant}: {role}: pods must run as a non-root user")
        secret_refs = {
            e["valueFrom"]["secretKeyRef"]["name"] for e in app["env"] if "valueFrom" in e
        }
        plain = {e["name"] for e in app["env"] if "value" in e}
        if plain & set(SECRETS):
            fail(f"{variant}: {role}: secret settings must come from a Secret, not plain values")
        expected = values["secret"].get("existingSecret") or "tg-tollgate-secrets"
        if secret_refs != {expected}:
            fail(f"{variant}: {role}: secrets must come from {expected}, not {secret_refs}")
        autoscaled = values.get(role, {}).get("autoscaling", {}).get("enabled", True)
        hpa = by_kind(documents, "HorizontalPodAutoscaler").get(f"tg-tollgate-{role}")
        if autoscaled:
            if hpa is None:
                fail(f"{variant}: no HorizontalPodAutoscaler for {role}")
            elif hpa["spec"]["metrics"][0]["resource"]["name"] != "cpu":
                fail(f"{variant}: the {role} autoscaler must scale on CPU")
            if "replicas" in deployment["spec"]:
                fail(f"{variant}: {role}: replicas must be left to the autoscaler")
        elif deployment["spec"].get("replicas") != values[role]["replicas"]:
            fail(f"{variant}: {role}: replicas must follow values")

    jobs = by_kind(documents, "Job")
    if values.get("migrations", {}).get("enabled", True):
        job = jobs.get("tg-tollgate-migrate")
        if job is None:
            fail(f"{variant}: no migration Job")
        else:
            hooks = job["metadata"].get("annotations", {}).get("helm.sh/hook", "")
            if "pre-install" not in hooks or "pre-upgrade" not in hooks:
                fail(f"{variant}: the migration Job must be a pre-install and pre-upgrade hook")
            if container(job)["args"] != ["migrate"]:
                fail(f"{variant}: the migration Job must run `tollgate migrate`")
    elif jobs:
        fail(f"{variant}: migrations are off but a Job was rendered")

    monitors = by_kind(documents, "ServiceMonitor")
    wanted = values.get("metrics", {}).get("serviceMonitor", {}).get("enabled", False)
    if bool(monitors) != wanted:
        fail(f"{variant}: ServiceMonitor rendered: {bool(monitors)}, wanted: {wanted}")


def check_dockerfile():
    text = Path("deploy/Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    if len(stages) < 2:
        fail("Dockerfile: expected a multi-stage build (a build stage and a runtime stage)")
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    if not users or users[-1].split(":")[0] in ("0", "root"):
        fail("Dockerfile: the runtime stage must switch to a non-root USER")
    if "--locked" not in text:
        fail("Dockerfile: build with --locked so the image uses Cargo.lock")


def build_stage(text):
    """The lines of the Dockerfile's first stage (the build), continuations joined."""
    lines = re.sub(r"\\\n", " ", text).splitlines()
    starts = [i for i, line in enumerate(lines) if re.match(r"FROM\s", line)]
    end = starts[1] if len(starts) > 1 else len(lines)
    return lines[starts[0]:end] if starts else []


def ignored(relative, patterns):
    return any(
        fnmatch.fnmatch(relative, pattern) or fnmatch.fnmatch(relative.split("/")[0], pattern)
        for pattern in patterns
    )


def copy_into(source, target, patterns):
    """Copies `source` (a file, or a directory's contents) to `target` as `docker build` would,
    leaving out what .dockerignore names. Fresh modification times: cargo must check these
    files, not trust artifacts built from another checkout."""
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            relative = path.relative_to(Path(".")).as_posix()
            if path.is_file() and not ignored(relative, patterns):
                destination = target / path.relative_to(source)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, destination)
    elif source.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    else:
        fail(f"Dockerfile: COPY names {source}, which does not exist")


def assemble_build_context(text, context):
    """Lays out in `context` what the build stage's COPY lines put under its WORKDIR."""
    patterns = [
        line.strip()
        for line in Path(".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ] if Path(".dockerignore").exists() else []
    workdir = "/"
    for line in build_stage(text):
        words = shlex.split(line, comments=True)
        if not words:
            continue
        instruction, arguments = words[0].upper(), words[1:]
        if instruction == "WORKDIR":
            workdir = arguments[0]
        if instruction not in ("COPY", "ADD"):
            continue
        if any(a.startswith("--from") for a in arguments):
            continue
        paths = [a for a in arguments if not a.startswith("--")]
        *sources, destination = paths
        base = Path(destination) if destination.startswith("/") else Path(workdir) / destination
        relative = base.relative_to(workdir) if base.is_relative_to(workdir) else None
        if relative is None:
            continue
        into_directory = destination.endswith("/") or len(sources) > 1
        for source in sources:
            for match in sorted(Path(".").glob(source)) or [Path(source)]:
                target = context / relative
                if into_directory and not match.is_dir():
                    target = target / match.name
                copy_into(match, target, patterns)


def check_build_stage():
    """The build stage's COPY lines bring everything the build embeds: `cargo check --release`
    runs on exactly what they copy (no container engine needed). The target directory is kept
    outside the temporary context ($CARGO_TARGET_DIR, else a cache beside the virtualenv's), so
    dependencies are checked once, not on every run."""
    text = Path("deploy/Dockerfile").read_text()
    target_dir = os.environ.get("CARGO_TARGET_DIR") or str(
        Path.home() / ".cache" / "tollgate" / "deploy-check-target"
    )
    with tempfile.TemporaryDirectory(prefix="tollgate-build-context-") as context:
        assemble_build_context(text, Path(context))
        run = subprocess.run(
            ["cargo", "check", "--release", "--locked", "--bin", "tollgate", "--quiet"],
            cwd=context,
            env={**os.environ, "CARGO_TARGET_DIR": target_dir},
            capture_output=True,
            text=True,
        )
        if run.returncode != 0:
            fail(
                "Dockerfile: the build stage does not build from what it copies "
                f"(cargo check --release in its context):\n{run.stderr.strip()}"
            )


def check_compose():
    compose = yaml.safe_load(Path("deploy/docker-compose.yml").read_text())
    services = compose.get("services", {})
    app = services.get("tollgate")
    if app is None:
        fail("docker-compose.yml: no tollgate service")
        return
    images = " ".join(s.get("image", "") for s in services.values())
    if "postgres" not in images:
        fail("docker-compose.yml: no PostgreSQL service")
    if not any(sink in images for sink in ("mailpit", "maildev", "mailhog")):
        fail("docker-compose.yml: no SMTP sink service")
    if app.get("depends_on", {}).get("postgres", {}).get("condition") != "service_healthy":
        fail("docker-compose.yml: tollgate must wait for a healthy PostgreSQL")
    environment = app.get("environment", {})
    for variable in ("DATABASE_URL", "SMTP_URL"):
        if variable not in environment:
            fail(f"docker-compose.yml: tollgate needs {variable}")
    build = app.get("build", {})
    if not (Path("deploy") / build.get("context", ".") / build.get("dockerfile", "")).is_file():
        fail("docker-compose.yml: the build context and dockerfile do not name deploy/Dockerfile")


def main():
    lint()
    rendered = 0
    for variant, values in VARIANTS.items():
        documents = render(values)
        rendered += len(documents)
        for name, document in documents:
            validate_schema(variant, name, document)
        check_chart_promises(variant, values, documents)
    check_dockerfile()
    check_build_stage()
    check_compose()
    for failure in failures:
        print(f"check-deploy: {failure}", file=sys.stderr)
    if failures:
        print(f"check-deploy: {len(failures)} problems", file=sys.stderr)
        return 1
    print(
        f"check-deploy: chart lints; {len(VARIANTS)} value sets rendered {rendered} manifests, "
        f"all valid for Kubernetes {KUBERNETES_VERSION}; Dockerfile (its build stage checks with cargo) "
        "and compose file fine"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
