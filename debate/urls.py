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
    path("rooms/<int:room_id>/record.json", views.room_export_json, name="room_export_json"),
    path("rooms/<int:room_id>/record/", views.room_record_page, name="room_record"),
    path("record/<str:token>/", views.record_shared, name="record_shared"),
]
