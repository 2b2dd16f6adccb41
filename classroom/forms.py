from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import throttle


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
