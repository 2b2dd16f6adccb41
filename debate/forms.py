from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Scenario


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
