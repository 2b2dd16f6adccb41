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
    path("rooms/<int:room_id>/briefing/", views.room_briefing, name="room_briefing"),
    path("scenarios/", views.scenario_list, name="scenario_list"),
    path("scenarios/new/", views.scenario_new, name="scenario_new"),
    path("scenarios/<int:scenario_id>/", views.scenario_briefing, name="scenario_briefing"),
    path("scenarios/<int:scenario_id>/edit/", views.scenario_edit, name="scenario_edit"),
    path("scenarios/<int:scenario_id>/copy/", views.scenario_copy, name="scenario_copy"),
    path("rooms/<int:room_id>/record.json", views.room_export_json, name="room_export_json"),
    path("rooms/<int:room_id>/record/", views.room_record_page, name="room_record"),
    path("record/<str:token>/", views.record_shared, name="record_shared"),
]
