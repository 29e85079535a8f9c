"""The OpenAPI schema at its stable URL lists the token routes and, apart, the run-token ingest routes;
the browsable docs are a page behind the login and load no script from outside."""

from controlplane.api.ingest_schema import INGEST_TAG


def test_the_schema_lists_the_api_and_marks_the_ingest_routes_apart(client, db):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "Triad API"
    assert "/api/v1/me" in schema["paths"]
    events = schema["paths"]["/api/v1/runs/{run_id}/events"]["post"]
    assert events["tags"] == [INGEST_TAG] and events["security"] == [{"RunToken": []}]
    schemes = schema["components"]["securitySchemes"]
    assert schemes["RunToken"]["scheme"] == "bearer"
    assert schema["paths"]["/api/v1/me"]["get"]["security"] != [{"RunToken": []}]


def test_the_docs_need_a_login_and_use_local_files(client, django_user_model):
    response = client.get("/api/v1/docs")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    client.force_login(django_user_model.objects.create(username="reader"))
    page = client.get("/api/v1/docs").content.decode()
    assert "/static/ninja/swagger-ui" in page
    assert "cdn." not in page
