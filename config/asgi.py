"""ASGI entry point: HTTP through Django, websockets through the room consumer."""

import gc
import logging
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from channels.sessions import SessionMiddlewareStack  # noqa: E402
from django.conf import settings  # noqa: E402

from debate.routing import websocket_urlpatterns  # noqa: E402

GC_THRESHOLDS = (10_000, 50, 50)

http_app = django_asgi_app
if settings.SERVE_STATIC:
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    http_app = ASGIStaticFilesHandler(django_asgi_app)

# Sockets get the pages' session (the cookie, then the session row when first read). Who the user
# is, is read from it by the consumer in its first database call (consumers._admit, as Django's
# auth reads it for a request) rather than by AuthMiddlewareStack in a call of its own: a thousand
# pages reconnecting after a restart make one database call each instead of two.
application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": AllowedHostsOriginValidator(
            SessionMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)

# What start-up made (Django, the URL conf, the models, the app registry) lives as long as the
# process: collect start-up's garbage, then freeze the rest out of the collector's generations, so
# a full collection under load walks only what the sockets made. And collect the young generation
# every 10,000 allocations instead of 700: a busy process allocates that many in a few
# milliseconds. Together they took tens of milliseconds off the p99 of a loaded process
# (bench/RESULTS.md, eighth round; `gcfreeze`, `gcthresh` in bench/patched_asgi.py).
gc.collect()
gc.freeze()
gc.set_threshold(*GC_THRESHOLDS)

if not settings.REDIS_URL:
    logging.getLogger("quorum").info(
        "No REDIS_URL: using the in-memory channel layer (run a single server process only)."
    )
