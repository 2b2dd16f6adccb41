"""Installs the built-in scenario's evidence cards (debate/scenarios/*.json, key "cards")."""

from django.db import migrations


def install(apps, schema_editor):
    from debate.services import builtin_scenario_data, scenario_install_with

    scenario_install_with(
        apps.get_model("debate", "Scenario"),
        apps.get_model("debate", "Position"),
        data=builtin_scenario_data(),
        builtin=True,
        card_model=apps.get_model("debate", "EvidenceCard"),
    )


class Migration(migrations.Migration):
    dependencies = [("debate", "0006_research_cards_scenarios")]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
