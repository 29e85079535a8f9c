from django.urls import path

from runs import compare_views, views

app_name = "runs"
urlpatterns = [
    path("", views.run_list, name="list"),
    path("new/", views.run_launch, name="launch"),
    path("compare/", compare_views.run_compare, name="compare"),
    path("compare/metrics.json", compare_views.compare_metrics, name="compare-metrics"),
    path("compare/metric-keys.json", compare_views.compare_keys, name="compare-keys"),
    path("nodes/", views.node_list, name="nodes"),
    path("queue/", views.queue_list, name="queue-list"),
    path("queue/<str:pool>/", views.queue_pool, name="queue"),
    path("<int:run_id>/", views.run_detail, name="detail"),
    path("<int:run_id>/metrics.json", views.run_metrics, name="metrics"),
    path("<int:run_id>/cancel/", views.run_cancel, name="cancel"),
    path("<int:run_id>/resume/", views.run_resume, name="resume"),
    path("<int:run_id>/attempts/<int:attempt>/spec.json", views.run_attempt_spec, name="attempt-spec"),
    path("<int:run_id>/attempts/<int:attempt>/rerun/", views.run_rerun, name="rerun"),
]
