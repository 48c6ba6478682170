"""The reports routes: /api/reports and /api/reports/{report_id}, without trailing slashes."""

from django.urls import path, re_path

from .views import ReportDetailView, ReportListView

urlpatterns = [
    path("reports", ReportListView.as_view(), name="reports"),
    re_path(r"^reports/(?P<report_id>[0-9]+)$", ReportDetailView.as_view(), name="report"),
]
