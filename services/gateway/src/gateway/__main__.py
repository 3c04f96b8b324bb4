"""`python -m gateway` (what `make run` calls): print the URLs (and, in dev mode with the
built-in development secret only, a development token), then serve the gateway on
127.0.0.1:8000 (``GATEWAY_PORT``)."""

from __future__ import annotations

import sys
from datetime import timedelta

from gateway.settings import SERVICES, GatewaySettings
from service_defaults.auth import issue_token
from service_defaults.runner import run_service
from service_defaults.settings import load_settings

DEV_ROLES = ("admin", "ops")
PREFERRED_EXAMPLE = "/api/sales/materiales"  # demo data makes it answer something useful


def example_path(settings: GatewaySettings) -> str:
    """A GET route that needs a token (from the merged OpenAPI), for the curl example."""
    fallback = "/api/evidence/health/ready"
    try:
        from gateway.main import create_app

        spec = create_app(settings).openapi()  # cheap: no I/O in the factories
    except Exception:
        return fallback
    paths = spec.get("paths", {})
    if PREFERRED_EXAMPLE in paths:
        return PREFERRED_EXAMPLE
    for path, item in paths.items():
        op = item.get("get")
        if not (path.startswith("/api/") and "{" not in path and op and op.get("security")):
            continue
        if any(p.get("required") for p in op.get("parameters", [])):
            continue  # the example must work as printed
        return str(path)
    return fallback


def banner(settings: GatewaySettings) -> str:
    base = f"http://{settings.host}:{settings.port}"
    lines = [
        "",
        f"Nexo gateway ({settings.mode} mode, env={settings.env})",
        f"  gateway      {base}/",
        f"  API docs     {base}/docs",
        f"  OpenAPI      {base}/openapi.json",
        f"  health       {base}/health/ready   (live: {base}/health/live)",
        f"  metrics      {base}/metrics",
        f"  ops board    {base}/ops"
        + ("   (dev login on the page)" if settings.dev_tokens_allowed() else ""),
    ]
    for service in SERVICES:
        target = (
            f"{base}/api/{service}"
            if settings.mode == "embedded"
            else f"{base}/api/{service} -> {settings.service_url(service)}"
        )
        lines.append(f"  {service:<12} {target}   (health: {base}/api/{service}/health/ready)")
    if settings.dev_tokens_allowed():
        token = issue_token(settings, "dev", DEV_ROLES, name="Developer", ttl=timedelta(hours=12))
        lines += [
            "",
            f"Development JWT (roles: {', '.join(DEV_ROLES)}; valid 12 h):",
            f"  {token}",
            "",
            "Try:",
            f'  curl -H "Authorization: Bearer {token}" {base}{example_path(settings)}',
        ]
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    settings = load_settings(GatewaySettings)
    print(banner(settings), flush=True)
    if settings.mode == "embedded":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    run_service(settings, "gateway.main:app_from_env", host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()
    sys.exit(0)
