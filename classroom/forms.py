from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import throttle

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


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's sign-in form, refusing to check passwords for a username and address that failed
    too often (classroom/throttle.py)."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _("That username and password do not match. Check both and try again."),
    }
    throttled = False

    def _address(self) -> str:
        return (self.request.META.get("REMOTE_ADDR") if self.request else None) or "unknown"

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        address = self._address()
        wait = throttle.login_blocked(username=username, address=address)
        if wait:
            self.throttled = True
            minutes = max(1, (wait + 59) // 60)
            raise forms.ValidationError(
                ngettext(
                    "Too many attempts to sign in. Please wait %(minutes)d minute and try again.",
                    "Too many attempts to sign in. Please wait %(minutes)d minutes and try again.",
                    minutes,
                )
                % {"minutes": minutes},
                code="throttled",
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            if username:
                throttle.login_failed(username=username, address=address)
            raise
        throttle.login_succeeded(username=username, address=address)
        return cleaned
