from django.urls import path

from runs.evals import views

app_name = "evals"
urlpatterns = [
    path("", views.eval_list, name="list"),
    path("new/", views.eval_new, name="new"),
    path("compare/", views.eval_compare, name="compare"),
    path("<int:job_id>/", views.eval_detail, name="detail"),
    path("<int:job_id>/again/", views.eval_again, name="again"),
]
