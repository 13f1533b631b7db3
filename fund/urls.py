from django.contrib.auth import views as auth_views
from django.http import HttpResponse, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import path

from fund import notify_views, views
from fund.security import ThrottledAuthenticationForm

urlpatterns = [
    path("", views.home, name="member-home"),
    path("pay/", views.pay, name="member-pay"),
    path("loan-request/", views.change_loan_request, name="member-loan-request"),
    path("draw/", views.run_draw, name="member-run-draw"),
    path("draw/table/", views.draw_table, name="member-draw-table"),
    path("draw/<int:year>-<int:month>/report.json", views.draw_report_json, name="member-draw-report"),
    path("draw/verify_draw.py", views.draw_verifier, name="member-draw-verifier"),
    path("ranking/", views.ranking, name="member-ranking"),
    path("statement/", views.statement_page, name="member-statement"),
    path("statement.csv", views.statement_csv, name="member-statement-csv"),
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True, authentication_form=ThrottledAuthenticationForm),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/set/<uidb64>/<token>/", views.PasswordSetView.as_view(), name="password-set"),
    path(
        "password/set/done/",
        auth_views.PasswordResetCompleteView.as_view(template_name="registration/password_set_complete.html"),
        name="password-set-complete",
    ),
    path("password/reset/", views.PasswordResetView.as_view(), name="password-reset"),
    path(
        "password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="registration/password_reset_done.html"),
        name="password-reset-done",
    ),
    path("notifications/connect/", notify_views.connect_chat, name="member-connect-chat"),
    path("notifications/unlink/", notify_views.unlink_chat, name="member-unlink-chat"),
    path("notifications/choices/", notify_views.save_notification_choices, name="member-notification-choices"),
    path("bot/<str:channel>/<str:secret>/", notify_views.bot_webhook, name="bot-webhook"),
    path("healthz", lambda request: HttpResponse("ok"), name="healthz"),
    # Browsers ask for /favicon.ico whatever the page says; the icon is the one the pages link to.
    path("favicon.ico", lambda request: HttpResponsePermanentRedirect(static("fund/favicon.svg"))),
]
