"""Installs the built-in scenario, "Model release committee", from debate/scenarios/."""

from django.db import migrations


def install(apps, schema_editor):
    from debate.services import builtin_scenario_data, scenario_install_with

    scenario_install_with(
        apps.get_model("debate", "Scenario"),
        apps.get_model("debate", "Position"),
        data=builtin_scenario_data(),
        builtin=True,
    )


class Migration(migrations.Migration):
    dependencies = [("debate", "0001_initial")]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
