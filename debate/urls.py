from django.urls import path

from . import views

app_name = "debate"

urlpatterns = [
    path("", views.home, name="home"),
    path("join/", views.join, name="join"),
    path("join/<str:code>/", views.join, name="join_code"),
    path("rooms/new/", views.room_create, name="room_create"),
    path("rooms/<int:room_id>/", views.room, name="room"),
    path("rooms/<int:room_id>/present/", views.room_present, name="room_present"),
    path("rooms/<int:room_id>/record.md", views.room_export_md, name="room_export_md"),
    path("solo/start/", views.solo_start, name="solo_start"),
    path("solo/resume/", views.solo_resume, name="solo_resume"),
    path("solo/resume/<str:token>/", views.solo_resume_link, name="solo_resume_link"),
]
