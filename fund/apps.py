from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FundConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "fund"
    verbose_name = _("Fund")

    def ready(self) -> None:
        from fund.persian import use_jalali_dates

        use_jalali_dates()
