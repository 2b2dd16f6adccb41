from django.contrib import admin
from django.urls import include, path
from django.utils import timezone
from django.views.decorators.cache import cache_page
from django.views.decorators.http import last_modified
from django.views.i18n import JavaScriptCatalog

from debate.views import healthz

# The scripts' translations (static/js/i18n.js), loaded by pages in another language than English
# (templates/base.html): this project's djangojs catalogues (LOCALE_PATHS and its apps), not the
# admin's. They change only with a deploy, which restarts the server: cached for a day under a
# key naming this process's start (Django's docs, "Note on performance"), and a browser that has
# the catalog since then gets a 304.
CATALOG_SINCE = timezone.now()
javascript_catalog = last_modified(lambda request: CATALOG_SINCE)(
    cache_page(60 * 60 * 24, key_prefix=f"jsi18n-{CATALOG_SINCE:%Y%m%d%H%M%S%f}")(
        JavaScriptCatalog.as_view(packages=["classroom", "debate"])
    )
)

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("jsi18n/", javascript_catalog, name="javascript-catalog"),
    path("accounts/", include("classroom.urls")),
    path("admin/", admin.site.urls),
    path("", include("classroom.urls_classes")),
    path("", include("debate.urls")),
]
