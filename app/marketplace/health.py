"""GET /healthz: what HAProxy's health checks and `infra status` call. It checks what this
tier itself needs (the database on the entity tier) and nothing behind it, so that a dead
entity tier does not mark every web instance down too."""
from django.conf import settings
from django.db import connection
from django.http import JsonResponse


def healthz(request):
    checks = {}
    if "entity" in settings.TIERS:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            checks["database"] = "ok"
        except Exception as error:  # noqa: BLE001 - any failure means "not healthy"
            checks["database"] = f"error: {type(error).__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse({"ok": healthy, "tier": settings.TIER, "instance": settings.INSTANCE,
                         "checks": checks}, status=200 if healthy else 503)
