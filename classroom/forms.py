from django import forms
from django.utils.translation import gettext_lazy as _

CODE_ATTRS = {
    "autocomplete": "off",
    "autocapitalize": "characters",
    "spellcheck": "false",
    "class": "code-input",
}


class ClassCreateForm(forms.Form):
    name = forms.CharField(
        label=_("Class name"),
        max_length=120,
        help_text=_("e.g. “Year 11 Ethics, autumn term”."),
    )


class CoownerForm(forms.Form):
    username = forms.CharField(
        label=_("Facilitator's username"),
        max_length=150,
        help_text=_("They get the same powers over this class and its rooms."),
    )


class StudentJoinForm(forms.Form):
    code = forms.CharField(label=_("Class code"), max_length=12, widget=forms.TextInput(CODE_ATTRS))
    display_name = forms.CharField(
        label=_("Your name"),
        max_length=40,
        help_text=_("How your teacher and classmates will see you. A first name is enough."),
        widget=forms.TextInput(attrs={"autocomplete": "nickname"}),
    )


class PinRejoinForm(forms.Form):
    code = forms.CharField(label=_("Class code"), max_length=12, widget=forms.TextInput(CODE_ATTRS))
    display_name = forms.CharField(label=_("Your name in the class"), max_length=40)
    pin = forms.CharField(
        label=_("Your PIN"),
        max_length=12,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}),
    )


class StudentSigninForm(forms.Form):
    username = forms.CharField(
        label=_("Username"),
        max_length=40,
        widget=forms.TextInput(attrs={"autocomplete": "username"}),
    )
    password = forms.CharField(
        label=_("Password"),
        max_length=128,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class StudentAccountForm(forms.Form):
    username = forms.CharField(
        label=_("Choose a username"),
        max_length=40,
        widget=forms.TextInput(attrs={"autocomplete": "username"}),
    )
    password = forms.CharField(
        label=_("Choose a password"),
        max_length=128,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
