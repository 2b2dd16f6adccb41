from django.contrib import admin
from django.urls import include, path

from debate.views import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("accounts/", include("classroom.urls")),
    path("admin/", admin.site.urls),
    path("", include("classroom.urls_classes")),
    path("", include("debate.urls")),
]
