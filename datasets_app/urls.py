from django.urls import path

from datasets_app import views

app_name = "datasets"
urlpatterns = [
    path("", views.dataset_list, name="list"),
    path("versions/<int:version_id>/", views.version_detail, name="version"),
]
