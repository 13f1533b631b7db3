"""Spreadsheet import and export in the admin: django-import-export with unfold's forms.

The admin classes mix these in (``class PaymentAdmin(FundModelAdmin, PaymentImportExportMixin)``);
who may import or export is decided by fund.admin.base (operators import, inspectors export).
The resources and every rule live in fund.imports; this module only wires them to the admin:
CSV and XLSX only, all-or-nothing on confirm too, and a preview that shows a summary and the
first rows instead of rendering a 100,000-row file.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from import_export.admin import ImportExportModelAdmin
from import_export.formats.base_formats import CSV, XLSX
from import_export.results import Result
from unfold.contrib.import_export.forms import ExportForm, ImportForm

from fund.imports import HistoryResult, LoanResource, MemberResource, PaymentResource, problems_of

# Shown in a message when the confirm step finds problems (the preview lists them all).
MESSAGE_PROBLEMS = 10


class HistoryImportExportMixin(ImportExportModelAdmin):
    import_form_class = ImportForm
    export_form_class = ExportForm
    # Class attributes shadow import-export's settings-reading properties: CSV and XLSX only.
    formats = [CSV, XLSX]
    import_template_name = "admin/import_export/history_import.html"

    def get_import_data_kwargs(self, **kwargs: Any) -> dict[str, Any]:
        # The confirm step imports the file again: a row that went bad in between writes nothing.
        kwargs = super().get_import_data_kwargs(**kwargs)
        kwargs["rollback_on_validation_errors"] = True
        return kwargs

    def process_import(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        form = self.create_confirm_form(request)
        if self.has_import_permission(request) and form.is_valid() and not self._confirmable(request, form):
            messages.error(request, _("This import can no longer be confirmed: upload the file again."))
            app_label, model_name = self.get_model_info()
            return HttpResponseRedirect(reverse(f"admin:{app_label}_{model_name}_import"))
        return super().process_import(request, **kwargs)

    def _confirmable(self, request: HttpRequest, form: Any) -> bool:
        """The confirmation names a format, a resource and an uploaded file that exist. A forged or
        expired one would otherwise fail deep inside import-export with a server error."""
        formats, resources = self.get_import_formats(), self.get_import_resource_classes(request)
        chosen, resource = form.cleaned_data["format"], form.cleaned_data.get("resource") or "0"
        if not (chosen.isdecimal() and int(chosen) < len(formats)):
            return False
        if not (resource.isdecimal() and int(resource) < len(resources)):
            return False
        input_format = formats[int(chosen)](encoding=self.from_encoding)
        storage = self.get_tmp_storage_class()(
            name=form.cleaned_data["import_file_name"],
            encoding=None if input_format.is_binary() else self.from_encoding,
            read_mode=input_format.get_read_mode(),
            **self.get_tmp_storage_class_kwargs(),
        )
        try:
            return storage.read() is not None
        except OSError:
            return False

    def process_result(self, result: Result, request: HttpRequest) -> HttpResponse:
        if result.has_errors() or result.has_validation_errors():
            problems = problems_of(result)
            shown = "; ".join(str(problem) for problem in problems[:MESSAGE_PROBLEMS])
            messages.error(
                request,
                ngettext(
                    "Nothing was imported: %(count)d problem. %(problems)s",
                    "Nothing was imported: %(count)d problems. %(problems)s",
                    len(problems),
                )
                % {"count": len(problems), "problems": shown},
            )
            app_label, model_name = self.get_model_info()
            return HttpResponseRedirect(reverse(f"admin:{app_label}_{model_name}_import"))
        return super().process_result(result, request)

    def add_success_message(self, result: Result, request: HttpRequest) -> None:
        summary = " ".join(result.summary) if isinstance(result, HistoryResult) else ""
        count = result.totals["new"]
        messages.success(
            request,
            ngettext("Imported %(count)d row. %(summary)s", "Imported %(count)d rows. %(summary)s", count)
            % {"count": count, "summary": summary},
        )


class MemberImportExportMixin(HistoryImportExportMixin):
    resource_classes = [MemberResource]


class LoanImportExportMixin(HistoryImportExportMixin):
    resource_classes = [LoanResource]


class PaymentImportExportMixin(HistoryImportExportMixin):
    resource_classes = [PaymentResource]
