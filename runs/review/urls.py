from django.urls import path

from runs.review import views

app_name = "review"
urlpatterns = [
    path("runs/<int:run_id>/", views.review_run, name="run"),
    path("runs/<int:run_id>/problems/", views.review_problems, name="problems"),
    path("runs/<int:run_id>/labels.jsonl", views.review_export, name="export"),
    path("compare/", views.review_compare, name="compare"),
    path("generations/<int:generation_id>/", views.review_generation, name="generation"),
    path("generations/<int:generation_id>/label", views.review_label, name="label"),
    path("generations/<int:generation_id>/undo", views.review_undo, name="undo"),
    path("generations/<int:generation_id>/comment", views.review_comment, name="comment"),
]
