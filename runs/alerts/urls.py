from django.urls import path

from runs.alerts import views

app_name = "alerts"
urlpatterns = [
    path("", views.alert_list, name="list"),
    path("rules/new/", views.alert_rule_new, name="new"),
    path("rules/<int:rule_id>/", views.alert_rule_detail, name="rule"),
    path("rules/<int:rule_id>/delete/", views.alert_rule_delete, name="delete"),
    path("notifications/", views.notification_list, name="notifications"),
    path("notifications/read/", views.notifications_read, name="read"),
    path("bell/", views.bell, name="bell"),
    path("runs/<int:run_id>/", views.run_alerts, name="run"),
]
