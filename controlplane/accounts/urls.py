from django.urls import path

from controlplane.accounts import views

app_name = "accounts"
urlpatterns = [
    path("teams/", views.team_list, name="teams"),
    path("teams/new/", views.team_create, name="team-create"),
    path("teams/<int:team_id>/", views.team_detail, name="team"),
    path("teams/<int:team_id>/invite/", views.team_invite, name="team-invite"),
    path("teams/<int:team_id>/remove/", views.team_member_remove, name="team-remove"),
    path("audit/", views.audit_log, name="audit"),
    path("account/", views.account, name="account"),
    path("account/tokens/<int:token_id>/revoke/", views.api_token_revoke, name="token-revoke"),
]
