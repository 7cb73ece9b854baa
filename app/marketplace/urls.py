"""URLs of the tiers this process serves (settings.TIERS): each tier has its own prefix, so one
URLconf serves one tier in the stack and all three in tests."""
from django.conf import settings
from django.urls import include, path

from .health import healthz

urlpatterns = [path("healthz", healthz, name="healthz")]
if "entity" in settings.TIERS:
    urlpatterns.append(path("entity/v1/", include("entity.urls")))
if "experience" in settings.TIERS:
    urlpatterns.append(path("exp/v1/", include("experience.urls")))
if "web" in settings.TIERS:
    urlpatterns.append(path("", include("web.urls")))

handler400 = "marketplace.errors.handler400"
handler403 = "marketplace.errors.handler403"
handler404 = "marketplace.errors.handler404"
handler500 = "marketplace.errors.handler500"
