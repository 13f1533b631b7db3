"""Spreadsheet import and export in the admin: django-import-export with unfold's forms.

The admin classes mix these in (``class PaymentAdmin(FundModelAdmin, PaymentImportExportMixin)``);
who may import or export is decided by fund.admin.base (operators import, inspectors export).
The resources and every rule live in fund.imports; this module only wires them to the admin:
CSV and XLSX only, within the limits of fund.imports.files (checked before anything is parsed
or stored), all-or-nothing on confirm too, and a preview that shows a summary and the first rows
instead of rendering a 100,000-row file. A file of more than BACKGROUND_ROWS rows goes to the
background worker (fund.imports.jobs) and the operator follows it on the job's page. An upload
waits for its confirmation in the cache for UploadCache.CACHE_LIFETIME at most, and is deleted
once confirmed or refused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from import_export.admin import ImportExportModelAdmin
from import_export.results import Result
from import_export.tmp_storages import CacheStorage
from unfold.contrib.import_export.forms import ExportForm, ImportForm

from fund.imports import (
    HistoryResult,
    ImportFileError,
    LoanResource,
    MemberResource,
    PaymentResource,
    jobs,
    problems_of,
)
from fund.imports.files import BACKGROUND_ROWS, MAX_BYTES, HistoryCSV, HistoryXLSX, check_limits, real_extension
from fund.jalali import jalali_date
from fund.models import ImportJob

# Shown in a message when the confirm step finds problems (the preview lists them all).
MESSAGE_PROBLEMS = 10
RECENT_JOBS = 5  # the import page links the latest background imports of its kind


class UploadCache(CacheStorage):
    """Where an upload waits between the preview and the confirmation: not a day, half an hour."""

    CACHE_LIFETIME = 30 * 60


class _RefusedUpload:
    """Stands for an upload over the limits: nothing is stored, and reading it gives the reason."""

    name = ""

    def __init__(self, refusal: ImportFileError) -> None:
        self.refusal = refusal

    def read(self) -> bytes:
        raise self.refusal

    def remove(self) -> None:
        pass


def _read_upload(upload: Any) -> bytes:
    """The upload's bytes, never more than one byte over the limit (the rest is not read)."""
    upload.seek(0)
    return upload.read(MAX_BYTES + 1)


class HistoryImportExportMixin(ImportExportModelAdmin):
    import_form_class = ImportForm
    export_form_class = ExportForm
    # Class attributes shadow import-export's settings-reading properties: CSV and XLSX only,
    # read by the import's own reader, within its limits.
    formats = [HistoryCSV, HistoryXLSX]
    import_template_name = "admin/import_export/history_import.html"
    job_template_name = "admin/import_export/history_job.html"

    def get_export_filename(self, *args: Any) -> str:
        """``Payment-1405-09-11.csv``: the day in the fund's calendar (Jalali, Tehran), in Latin digits
        so that every system can name the file."""
        day = jalali_date(timezone.now(), with_time=False).replace("/", "-")
        return f"{self.model.__name__}-{day}.{args[-1].get_extension()}"

    # --- upload: limits first, then the preview here or the background job ---
    def import_action(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        if request.method == "POST" and self.has_import_permission(request):
            form = self.create_import_form(request)
            if form.is_valid():
                upload = form.cleaned_data["import_file"]
                content = _read_upload(upload)
                name = self._upload_name(form, content)
                self._read_as_what_it_is(request, form, name)
                try:
                    size = check_limits(content=content, file_name=name)
                except ImportFileError:
                    size = None  # the preview below shows the reason on the form
                if size is not None and size.rows > BACKGROUND_ROWS:
                    job = jobs.start_import_job(
                        kind=self.import_kind, file_name=name, content=content, user=request.user
                    )
                    return HttpResponseRedirect(self._job_url(job))
        response = super().import_action(request, **kwargs)
        self._forget_unconfirmable_upload(response)
        if isinstance(response, TemplateResponse) and response.context_data is not None:
            recent = ImportJob.objects.filter(kind=self.import_kind).order_by("-pk")[:RECENT_JOBS]
            response.context_data["import_jobs"] = [(job, self._job_url(job)) for job in recent]
        return response

    def _upload_name(self, form: Any, content: bytes) -> str:
        """The upload's name, its extension saying what the file really is: its own extension (or the
        format chosen, for a name without one of ours), a workbook being a workbook whatever its name."""
        chosen = self.get_import_formats()[int(form.cleaned_data["format"])]().get_extension()
        upload_name = str(form.cleaned_data["import_file"].name)
        stem, dot, extension = upload_name.rpartition(".")
        if not dot or extension.lower() not in ("csv", "xlsx"):
            stem, extension = (stem if dot else upload_name), chosen
        stem = stem or "upload"
        return stem + real_extension(content=content, file_name=f"{stem}.{extension.lower()}")

    def _read_as_what_it_is(self, request: HttpRequest, form: Any, name: str) -> None:
        """The file is read in its own format when the format chosen says otherwise (a CSV file read
        as a workbook could only be refused), and the operator is told."""
        formats = self.get_import_formats()
        chosen = int(form.cleaned_data["format"])
        extensions = [format_class().get_extension() for format_class in formats]
        real = name.rpartition(".")[2]
        if real not in extensions or extensions[chosen] == real:
            return
        request.POST = request.POST.copy()
        request.POST["format"] = str(extensions.index(real))
        messages.info(
            request,
            _("The file is in %(real)s format: it was read as %(real)s, not as %(chosen)s.")
            % {"real": real.upper(), "chosen": extensions[chosen].upper()},
        )

    def write_to_tmp_storage(self, import_file: Any, input_format: Any) -> Any:
        content = _read_upload(import_file)
        try:
            check_limits(content=content, file_name=f"upload.{input_format.get_extension()}")
        except ImportFileError as refusal:
            return _RefusedUpload(refusal)  # nothing over the limits is stored or parsed
        storage = self.get_tmp_storage_class()(
            encoding=None if input_format.is_binary() else self.from_encoding,
            read_mode=input_format.get_read_mode(),
            **self.get_tmp_storage_class_kwargs(),
        )
        storage.save(content)
        return storage

    def add_data_read_fail_error_to_form(self, form: Any, e: Exception) -> None:
        if isinstance(e, ImportFileError):
            form.add_error("import_file", str(e))
        else:
            super().add_data_read_fail_error_to_form(form, e)

    def _forget_unconfirmable_upload(self, response: HttpResponse) -> None:
        """An upload the preview refused can never be confirmed: delete it now, not in half an hour."""
        context = getattr(response, "context_data", None) or {}
        form = context.get("form")
        if context.get("confirm_form") is not None or form is None or not hasattr(form, "cleaned_data"):
            return
        name = getattr(form.cleaned_data.get("import_file"), "tmp_storage_name", "")
        if name:
            self.get_tmp_storage_class()(name=name, **self.get_tmp_storage_class_kwargs()).remove()

    # --- the background job's page ---
    @property
    def import_kind(self) -> str:
        return self.resource_classes[0].kind

    def get_urls(self) -> list[URLPattern]:
        app_label, model_name = self.get_model_info()
        view = self.admin_site.admin_view(self.import_job_view)
        return [
            path("import/job/<int:job_id>/", view, name=f"{app_label}_{model_name}_import_job"),
            *super().get_urls(),
        ]

    def _job_url(self, job: ImportJob) -> str:
        app_label, model_name = self.get_model_info()
        return reverse(f"admin:{app_label}_{model_name}_import_job", args=(job.pk,))

    def import_job_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        if not self.has_import_permission(request):
            raise PermissionDenied
        job = get_object_or_404(ImportJob, pk=job_id, kind=self.import_kind)
        if request.method == "POST":
            if jobs.confirm_import_job(job_id=job.pk):
                messages.success(request, _("The import is being written in the background."))
            else:
                messages.error(request, _("This import is not waiting for a confirmation any more."))
            return HttpResponseRedirect(self._job_url(job))
        started = job.outcome.get("stage_started")
        elapsed = (timezone.now() - datetime.fromisoformat(started)).total_seconds() if started else 0
        context = {
            **self.admin_site.each_context(request),
            "title": _("Import of %(file)s") % {"file": job.file_name},
            "opts": self.model._meta,
            "job": job,
            "running": job.state in (ImportJob.State.CHECKING, ImportJob.State.WRITING),
            "elapsed": int(elapsed),
            "more_problems": max(job.outcome.get("problem_count", 0) - len(job.outcome.get("problems", [])), 0),
            "import_url": reverse(f"admin:{self.get_model_info()[0]}_{self.get_model_info()[1]}_import"),
        }
        return TemplateResponse(request, self.job_template_name, context)

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
