import pytest


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """The production hasher costs ~0.3 s per account; only this process checks these passwords
    (the validators, which are what the signup tests are about, do not depend on the hasher)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
