from django.urls import path

from runs import compare_views, organize_views, views

app_name = "runs"
urlpatterns = [
    path("", views.run_list, name="list"),
    path("new/", views.run_launch, name="launch"),
    path("compare/", compare_views.run_compare, name="compare"),
    path("compare/metrics.json", compare_views.compare_metrics, name="compare-metrics"),
    path("compare/metric-keys.json", compare_views.compare_keys, name="compare-keys"),
    path("nodes/", views.node_list, name="nodes"),
    path("nodes/<path:name>/", views.node_detail, name="node"),
    path("nodes/<path:name>/samples.json", views.node_samples, name="node-samples"),
    path("queue/", views.queue_list, name="queue-list"),
    path("queue/<str:pool>/", views.queue_pool, name="queue"),
    path("<int:run_id>/", views.run_detail, name="detail"),
    path("<int:run_id>/metrics.json", views.run_metrics, name="metrics"),
    path("<int:run_id>/metric-keys.json", views.run_metric_keys, name="metric-keys"),
    path("layouts/<str:page>.json", views.chart_layout, name="chart-layout"),
    path("<int:run_id>/system.json", views.run_system, name="system"),
    path("<int:run_id>/log.txt", views.run_log_download, name="log-download"),
    path("<int:run_id>/cancel/", views.run_cancel, name="cancel"),
    path("<int:run_id>/resume/", views.run_resume, name="resume"),
    # Organizing runs (runs/organize_views.py): the run page's heading.
    path("<int:run_id>/progress/", organize_views.run_progress, name="progress"),
    path("<int:run_id>/rename/", organize_views.run_rename, name="rename"),
    path("<int:run_id>/tags/", organize_views.run_tags, name="tags"),
    path("<int:run_id>/note/", organize_views.run_note, name="note"),
    path("<int:run_id>/archive/", organize_views.run_archive, name="archive"),
    path("<int:run_id>/delete/", organize_views.run_delete, name="delete"),
    path("<int:run_id>/attempts/<int:attempt>/spec.json", views.run_attempt_spec, name="attempt-spec"),
    path("<int:run_id>/attempts/<int:attempt>/rerun/", views.run_rerun, name="rerun"),
    # The dataset page's solve rates, loaded with htmx (runs/diversity.py).
    path("datasets/<int:dataset_id>/solve-rates/", views.dataset_solve_rates, name="dataset_solve_rates"),
]
