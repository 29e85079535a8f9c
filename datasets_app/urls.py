from django.urls import path

from datasets_app import views

app_name = "datasets"
urlpatterns = [
    path("", views.dataset_list, name="list"),
    path("<int:dataset_id>/", views.dataset_detail, name="detail"),
    path("<int:dataset_id>/delete/", views.dataset_delete_view, name="delete"),
    path("versions/<int:version_id>/", views.version_detail, name="version"),
    path("versions/<int:version_id>/verify/", views.version_verify_retry, name="verify_retry"),
    path("problems/<int:problem_id>/", views.problem_detail, name="problem"),
]

urlpatterns += [
    path("<int:dataset_id>/generate/", views.generation_job_new, name="generate"),
    path("jobs/<int:job_id>/", views.generation_job_detail, name="job"),
    path("jobs/<int:job_id>/cancel/", views.generation_job_cancel_view, name="job_cancel"),
]
