from django import forms
from django.utils.translation import gettext_lazy as _

from classroom.models import ClassGroup
from classroom.selectors import classes_for_facilitator

from .models import AssignmentMethod, Scenario


class JoinForm(forms.Form):
    code = forms.CharField(
        label=_("Room code"),
        max_length=12,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "autocapitalize": "characters",
                "spellcheck": "false",
                "inputmode": "text",
                "class": "code-input",
            }
        ),
    )
    display_name = forms.CharField(
        label=_("Your name"),
        max_length=40,
        help_text=_("How others in the room will see you."),
        widget=forms.TextInput(attrs={"autocomplete": "nickname"}),
    )


class RoomCreateForm(forms.Form):
    scenario = forms.ModelChoiceField(
        label=_("Scenario"), queryset=Scenario.objects.filter(is_builtin=True), empty_label=None
    )
    title = forms.CharField(
        label=_("Room title"),
        max_length=120,
        required=False,
        help_text=_("Optional, e.g. “Period 3 — Thursday”."),
    )
    assignment_method = forms.ChoiceField(
        label=_("Positions"),
        choices=AssignmentMethod.choices,
        initial=AssignmentMethod.BALANCED,
        required=False,
    )
    choice_cap = forms.IntegerField(
        label=_("Members per position at most"),
        min_value=1,
        max_value=100,
        required=False,
        help_text=_("Only when members choose their position. Empty: no cap."),
    )
    anonymous = forms.BooleanField(
        label=_("Anonymous room"),
        required=False,
        help_text=_("Members see code names for each other; you see real names."),
    )

    classgroup = forms.ModelChoiceField(
        label=_("Class"),
        queryset=ClassGroup.objects.none(),
        required=False,
        empty_label=_("No class"),
        help_text=_("Students of the class are recognised in its rooms."),
    )

    def __init__(self, *args, user=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if user is not None:
            # The facilitator's own scenarios and the built-in ones, never another's.
            from .selectors import scenarios_for_facilitator

            self.fields["scenario"].queryset = scenarios_for_facilitator(user=user)
        classes = classes_for_facilitator(user=user) if user is not None else None
        if classes is not None:
            self.fields["classgroup"].queryset = classes
        if (classes is None or not classes.exists()) and not self.data.get("classgroup"):
            del self.fields["classgroup"]  # no classes yet: nothing to choose (a posted id
            # stays, and fails validation as a choice not offered)


class SoloStartForm(forms.Form):
    scenario = forms.ModelChoiceField(
        label=_("Scenario"),
        # Custom scenarios are private to their facilitator: a learner alone picks a built-in one.
        queryset=Scenario.objects.filter(is_builtin=True),
        empty_label=None,
    )
    display_name = forms.CharField(
        label=_("Your name (optional)"),
        max_length=40,
        required=False,
        help_text=_("Shown on your record. No account needed."),
        widget=forms.TextInput(attrs={"autocomplete": "nickname"}),
    )


class SoloResumeForm(forms.Form):
    code = forms.CharField(
        label=_("Room code"),
        max_length=12,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "autocapitalize": "characters",
                "spellcheck": "false",
                "class": "code-input",
            }
        ),
    )
    pin = forms.CharField(
        label=_("PIN"),
        max_length=12,
        help_text=_("The six digits you were shown when you started."),
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "inputmode": "numeric", "class": "code-input"}
        ),
    )


# --- custom scenarios (issue 6) ----------------------------------------------------------------


class ScenarioForm(forms.Form):
    """The scenario's own fields; positions and cards are formsets. services.scenario_create and
    scenario_update check the same limits again."""

    title = forms.CharField(label=_("Title"), max_length=200)
    question = forms.CharField(
        label=_("The decision to take"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One question the committee must answer."),
    )
    briefing = forms.CharField(
        label=_("Briefing"),
        max_length=20000,
        widget=forms.Textarea(attrs={"rows": 10}),
        help_text=_("Blank lines separate paragraphs; lines starting with “- ” make a list."),
    )
    argument_slots = forms.IntegerField(
        label=_("Arguments per position"), min_value=1, max_value=6, initial=3
    )
    risk_slots = forms.IntegerField(
        label=_("Risks each position names"), min_value=1, max_value=3, initial=1
    )
    revisit_months = forms.IntegerField(
        label=_("Revisit the decision after (months)"), min_value=1, max_value=60, initial=6
    )
    recommendation_guidance = forms.CharField(
        label=_("Guidance for the recommendation"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    revisit_guidance = forms.CharField(
        label=_("Guidance for the revisit condition"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class PositionForm(forms.Form):
    name = forms.CharField(label=_("Position"), max_length=120)
    short_name = forms.CharField(
        label=_("Short name"), max_length=40, required=False, help_text=_("For narrow screens.")
    )
    summary = forms.CharField(
        label=_("What this position argues"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class CardForm(forms.Form):
    title = forms.CharField(label=_("Card title"), max_length=120)
    body = forms.CharField(
        label=_("Evidence, in your own words"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    source_note = forms.CharField(label=_("Where it comes from"), max_length=300, required=False)


class BasePositionFormSet(forms.BaseFormSet):
    default_error_messages = {
        "too_few_forms": _("Write at least two positions."),
        "too_many_forms": _("A scenario has at most six positions."),
    }


PositionFormSet = forms.formset_factory(
    PositionForm,
    formset=BasePositionFormSet,
    extra=4,  # up to six rows on the page; rows left empty are ignored
    min_num=2,
    max_num=6,
    validate_min=True,
    validate_max=True,
    can_delete=True,
)
CardFormSet = forms.formset_factory(
    CardForm, extra=2, max_num=20, validate_max=True, can_delete=True
)


def scenario_form_data(
    form: ScenarioForm, positions: forms.BaseFormSet, cards: forms.BaseFormSet
) -> dict:
    """The forms' cleaned data as services.scenario_create takes it (deleted rows left out,
    empty extra rows ignored)."""

    def rows(formset: forms.BaseFormSet) -> list[dict]:
        kept = []
        for row in formset.forms:
            data = getattr(row, "cleaned_data", None) or {}
            if not data or data.get("DELETE"):
                continue
            kept.append({k: v for k, v in data.items() if k != "DELETE"})
        return kept

    return {**form.cleaned_data, "positions": rows(positions), "cards": rows(cards)}
