from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FundConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "fund"
    verbose_name = _("Fund")

    def ready(self) -> None:
        from django.contrib.auth.models import update_last_login
        from django.contrib.auth.signals import user_logged_in
        from django.db.backends.signals import connection_created

        from fund.audit import record_last_login
        from fund.money import register_sqlite_functions
        from fund.persian import use_jalali_dates

        use_jalali_dates()
        connection_created.connect(register_sqlite_functions, dispatch_uid="saghat-exact-money")
        # A login is not a change of the member: Django's own receiver saves the user (an empty
        # "changed" entry in the audit trail each time); ours writes the moment without one.
        user_logged_in.disconnect(update_last_login, dispatch_uid="update_last_login")
        user_logged_in.connect(record_last_login, dispatch_uid="update_last_login")
