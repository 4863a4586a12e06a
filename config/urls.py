from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from telemetry.api.views import OtlpTracesView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="overview", permanent=False)),
    path("", include("django.contrib.auth.urls")),
    path("", include("dashboard.urls")),
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    path("admin/", admin.site.urls),
    path("api/v1/", include("telemetry.api.urls")),
    path("v1/traces", OtlpTracesView.as_view(), name="otlp-traces"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
