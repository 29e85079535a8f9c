from django.urls import path

from runs.registry import views

app_name = "registry"
urlpatterns = [
    path("", views.model_list, name="list"),
    path("<int:model_id>/", views.model_detail, name="detail"),
    path("<int:model_id>/inspect/", views.model_inspect_again_view, name="inspect"),
    path("export/run/<int:run_id>/", views.model_export_view, name="export"),
]
