"""Classes, rosters, reports and retention (classroom.views_classes)."""

from django.urls import path

from . import views_classes as views

app_name = "classroom"

urlpatterns = [
    # Facilitators
    path("classes/", views.classes, name="classes"),
    path("classes/<int:classgroup_id>/", views.class_detail, name="class_detail"),
    path(
        "classes/<int:classgroup_id>/coowners/", views.class_coowner_add, name="class_coowner_add"
    ),
    path(
        "classes/<int:classgroup_id>/students/<int:student_id>/reset/",
        views.class_student_reset,
        name="class_student_reset",
    ),
    path(
        "classes/<int:classgroup_id>/students/<int:student_id>/remove/",
        views.class_student_remove,
        name="class_student_remove",
    ),
    path("classes/<int:classgroup_id>/report/", views.class_report, name="class_report"),
    path("classes/<int:classgroup_id>/report.csv", views.class_report_csv, name="class_report_csv"),
    path("classes/<int:classgroup_id>/export.zip", views.class_export, name="class_export"),
    path("classes/<int:classgroup_id>/delete/", views.class_delete, name="class_delete"),
    path("rooms/<int:room_id>/report/", views.room_report, name="room_report"),
    path("rooms/<int:room_id>/report.csv", views.room_report_csv, name="room_report_csv"),
    path("rooms/<int:room_id>/delete/", views.room_delete, name="room_delete"),
    # Students
    path("class/join/", views.student_join, name="student_join"),
    path("class/join/<str:code>/", views.student_join, name="student_join_code"),
    path("class/<int:classgroup_id>/", views.student_home, name="student_home"),
    path(
        "class/<int:classgroup_id>/rooms/<int:room_id>/enter/",
        views.student_room_enter,
        name="student_room_enter",
    ),
    path("class/<int:classgroup_id>/account/", views.student_account, name="student_account"),
    path("class/rejoin/", views.rejoin_pin, name="rejoin_pin"),
    path("class/rejoin/<str:token>/", views.rejoin_link, name="rejoin_link"),
    path("class/signin/", views.student_signin, name="student_signin"),
]
