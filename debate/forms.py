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
        label=_("Scenario"), queryset=Scenario.objects.all(), empty_label=None
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

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        classes = classes_for_facilitator(user=user) if user is not None else None
        if classes is not None:
            self.fields["classgroup"].queryset = classes
        if (classes is None or not classes.exists()) and not self.data.get("classgroup"):
            del self.fields["classgroup"]  # no classes yet: nothing to choose (a posted id
            # stays, and fails validation as a choice not offered)


class SoloStartForm(forms.Form):
    scenario = forms.ModelChoiceField(
        label=_("Scenario"), queryset=Scenario.objects.all(), empty_label=None
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
