from django.urls import path

from runs.spend import views

app_name = "spend"
urlpatterns = [
    path("", views.spend_dashboard, name="dashboard"),
    path("spend.csv", views.spend_csv, name="csv"),
    path("prices/", views.spend_prices, name="prices"),
    path("budgets/", views.spend_budget_set, name="budget-set"),
    path("budgets/team/", views.spend_team_budget_set, name="team-budget-set"),
    path("nodes/price/", views.spend_node_price_set, name="node-price-set"),
    path("estimate/", views.spend_estimate, name="estimate"),
    path("runs/<int:run_id>/", views.run_cost, name="run-cost"),
]
