import pytest


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """The production hasher costs ~0.3 s per account; only this process checks these passwords
    (the validators, which are what the signup tests are about, do not depend on the hasher)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def klass(facilitator):
    from classroom import services

    return services.classgroup_create(owner=facilitator, name="Year 11 Ethics")


@pytest.fixture
def class_room(scenario, facilitator, klass):
    from debate import services

    return services.room_create(
        owner=facilitator, scenario=scenario, title="Week 1", classgroup=klass
    )
