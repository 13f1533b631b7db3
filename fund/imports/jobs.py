"""Large imports run by the background worker, so that a web request never holds a big file.

An upload of more than ``BACKGROUND_ROWS`` rows becomes an ImportJob: the worker checks it
(``check_import_job``, a dry run), the operator reads the outcome on the job's page and confirms,
and the worker writes it (``write_import_job``). The page refreshes itself and shows the stage and
how long it has run. The upload's bytes are deleted as soon as the job is done with them.

Each step claims the job with a conditional UPDATE on its state, so a task django-q2 delivers
twice, or a confirmation posted twice, does the work once.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from fund import tasks
from fund.imports.cells import ImportFileError
from fund.imports.files import check_limits, load_dataset
from fund.imports.runner import RESOURCES, ImportOutcome, Problem, run_import
from fund.models import ImportJob, User

PROBLEMS_KEPT = 200  # the job's page lists this many problems, and counts them all
State = ImportJob.State


def start_import_job(*, kind: str, file_name: str, content: bytes, user: User | None) -> ImportJob:
    """Keep the upload and queue its check. Refuses at once a file over the limits."""
    if kind not in RESOURCES:
        raise ImportFileError(_("Unknown kind “%(kind)s”: use members, loans or payments.") % {"kind": kind})
    size = check_limits(content=content, file_name=file_name)
    job = ImportJob.objects.create(
        kind=kind,
        file_name=file_name[:255],
        content=content,
        rows=size.rows,
        created_by=user,
        outcome={"language": translation.get_language() or "", "stage_started": timezone.now().isoformat()},
    )
    tasks.queue(tasks.CHECK_IMPORT, job.pk, group="import")
    return job


def confirm_import_job(*, job_id: int) -> bool:
    """Queue the write of a checked job; False when it is not waiting for confirmation any more."""
    with transaction.atomic():
        claimed = ImportJob.objects.filter(pk=job_id, state=State.CHECKED).update(state=State.WRITING)
        if claimed:
            _stage(job_id)
            tasks.queue(tasks.WRITE_IMPORT, job_id, group="import")
    return bool(claimed)


def check_import_job(job_id: int) -> str:
    """The worker's dry run: every row checked, nothing written; a refused file's bytes go."""
    job = ImportJob.objects.filter(pk=job_id, state=State.CHECKING).first()
    if job is None:
        return "nothing to check"
    outcome = _run(job, dry_run=True)
    state = State.CHECKED if outcome.ok else State.REFUSED
    fields: dict[str, Any] = {"state": state, "outcome": _stored(job, outcome), "rows": outcome.rows}
    if not outcome.ok:
        fields["content"] = b""
    ImportJob.objects.filter(pk=job_id, state=State.CHECKING).update(**fields)
    return state


def write_import_job(job_id: int) -> str:
    """The worker's write, all or nothing; the job's new state commits with the rows it wrote."""
    job = ImportJob.objects.filter(pk=job_id, state=State.WRITING).first()
    if job is None:
        return "nothing to write"
    with transaction.atomic():
        outcome = _run(job, dry_run=False)
        state = State.DONE if outcome.ok else State.REFUSED
        ImportJob.objects.filter(pk=job_id, state=State.WRITING).update(
            state=state, outcome=_stored(job, outcome), written=outcome.written, content=b""
        )
    return state


def _run(job: ImportJob, *, dry_run: bool) -> ImportOutcome:
    language = job.outcome.get("language") or None
    with translation.override(language):
        try:
            dataset = load_dataset(content=bytes(job.content), file_name=job.file_name)
            return run_import(
                kind=job.kind, dataset=dataset, file_name=job.file_name, dry_run=dry_run, user=job.created_by
            )
        except ImportFileError as refused:
            return ImportOutcome(job.kind, job.file_name, dry_run, 0, 0, [Problem(None, "", str(refused))], [])


def _stored(job: ImportJob, outcome: ImportOutcome) -> dict[str, Any]:
    """What the job's page shows, kept after the upload itself is gone."""
    with translation.override(job.outcome.get("language") or None):
        problems = [str(problem) for problem in outcome.problems[:PROBLEMS_KEPT]]
    return {
        "language": job.outcome.get("language", ""),
        "stage_started": timezone.now().isoformat(),
        "problems": problems,
        "problem_count": len(outcome.problems),
        "summary": [str(line) for line in outcome.summary],
        "preview_headers": [str(header) for header in outcome.preview_headers],
        "preview_rows": [[number, [str(cell) for cell in cells]] for number, cells in outcome.preview_rows],
    }


def _stage(job_id: int) -> None:
    job = ImportJob.objects.get(pk=job_id)
    ImportJob.objects.filter(pk=job_id).update(outcome={**job.outcome, "stage_started": timezone.now().isoformat()})
