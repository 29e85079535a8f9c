from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from controlplane import health
from controlplane.api import app as rest_api
from runs import api

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="runs:list"), name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Password reset by mail: anonymous by nature (Django's views opt out of the login requirement).
    path("password-reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password-reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("account/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "account/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("admin/", admin.site.urls),
    path("runs/", include("runs.urls")),
    path("datasets/", include("datasets_app.urls")),
    path("spend/", include("runs.spend.urls")),
    path("review/", include("runs.review.urls")),
    path("models/", include("runs.registry.urls")),
    path("evals/", include("runs.evals.urls")),
    path("alerts/", include("runs.alerts.urls")),
    path("sweeps/", include("runs.sweeps.urls")),
    path("", include("controlplane.accounts.urls")),
    path("healthz", health.healthz, name="healthz"),  # load balancers' probe: no login (docs/deploy.md)
    path("api/v1/runs/<int:run_id>/events", api.run_events, name="api-run-events"),
    path("api/v1/runs/<int:run_id>/spec", api.run_spec, name="api-run-spec"),
    path("api/v1/runs/<int:run_id>/claim", api.run_claim, name="api-run-claim"),
    path("api/v1/runs/<int:run_id>/release", api.run_release, name="api-run-release"),
    # The REST API (controlplane/api/): after the ingest routes, which keep their run-token door.
    path("api/v1/", include(rest_api.urls(), namespace="api")),
    re_path(r"^api/(?P<rest>.*)$", rest_api.not_found, name="api-not-found"),
]
