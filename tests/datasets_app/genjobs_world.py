"""A generation job of team alpha's dataset (the role matrices' world, tests/controlplane/accounts/
conftest.py), for the "@gen_job" of the page and API walks: queued, with a rejected candidate."""


def world_generation_job(world) -> int:
    from datasets_app.models import CandidateStatus, GenerationCandidate, GenerationJob

    job, created = GenerationJob.objects.get_or_create(
        dataset=world.run.dataset_version.dataset,
        created_by=world.users["member"],
        defaults={
            "base_url": "http://127.0.0.1:9/v1",
            "model": "teacher-7b",
            "params": {"count": 2, "kind": "function"},
            "prompt_template": "problems-v1",
        },
    )
    if created:
        GenerationCandidate.objects.create(
            job=job,
            request_index=0,
            index=0,
            status=CandidateStatus.REJECTED,
            reason="malformed",
            detail="not JSON: <script>alert(1)</script>",
        )
    return job.pk
