from django.urls import path

from telemetry.api import views

urlpatterns = [
    path("ingest", views.IngestView.as_view(), name="ingest"),
    path("runs", views.RunListView.as_view(), name="run-list"),
    path("runs/<uuid:run_id>", views.RunDetailView.as_view(), name="run-detail"),
]
