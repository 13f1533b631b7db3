from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FundConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "fund"
    verbose_name = _("Fund")

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from fund.money import register_sqlite_functions
        from fund.persian import use_jalali_dates

        use_jalali_dates()
        connection_created.connect(register_sqlite_functions, dispatch_uid="saghat-exact-money")
