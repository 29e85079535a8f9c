from django.urls import path

from runs.registry import views

app_name = "registry"
urlpatterns = [
    path("", views.model_list, name="list"),
    path("<int:model_id>/inspect/", views.model_inspect_again_view, name="inspect"),
]
