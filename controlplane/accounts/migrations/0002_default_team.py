from django.db import migrations


def default_team(apps, schema_editor):
    """Existing users keep working: all of them join the "default" team; staff (who edited prices and
    budgets before roles existed) and superusers as admins, everyone else as members."""
    Team = apps.get_model("accounts", "Team")
    Membership = apps.get_model("accounts", "Membership")
    User = apps.get_model("auth", "User")
    team, _ = Team.objects.get_or_create(name="default")
    for user in User.objects.all():
        role = "admin" if user.is_staff or user.is_superuser else "member"
        Membership.objects.get_or_create(team=team, user=user, defaults={"role": role})


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(default_team, migrations.RunPython.noop)]
