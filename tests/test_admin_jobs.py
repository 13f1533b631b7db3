"""django-q2's pages in the back office, read by people: a job's page says what it did, with what
and how it ended; a schedule's next run is typed and shown as a Jalali date in Tehran time."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ, Schedule, Task
from django_q.tasks import async_task

from fund import tasks
from fund.jalali import TEHRAN
from fund.schedules import ensure_schedules
from tests.test_persian_pages import PageText

STARTED = dt.datetime(2026, 12, 2, 7, 30, tzinfo=dt.UTC)  # 1405/09/11 11:00 in Tehran


@pytest.fixture
def persian(client, operator):
    client.force_login(operator)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "fa"
    return client


def text_of(response) -> str:
    parser = PageText()
    parser.feed(response.content.decode())
    return " ".join(parser.chunks)


def job(**fields) -> Task:
    values = {"func": tasks.VERIFY_PAYMENT, "args": (12,), "kwargs": {}, "started": STARTED, "stopped": STARTED}
    return Task.objects.create(**{**values, **fields})


def test_a_finished_jobs_page_names_the_job_its_arguments_and_its_count(persian):
    done = job(id="ok1", name="ok-job", success=True, result=3)
    page = persian.get(reverse("admin:django_q_success_change", args=(done.pk,)))
    text = text_of(page)
    assert "تأیید پرداخت با بیت‌پین" in text  # the job, by what it does
    assert "پرداخت: ۱۲" in text  # its argument, named
    assert "۱۴۰۵/۰۹/۱۱ ۱۱:۰۰" in text  # started, Jalali, Tehran time
    assert "تمام شد؛ شمارشی که کار گزارش کرد: ۳." in text
    assert "(12,)" not in page.content.decode()  # no Python tuple
    assert "fund.tasks.verify_payment" in page.content.decode()  # the path stays, for whoever fixes it
    assert 'name="_save"' not in page.content.decode()  # a record of what the worker did: nothing to save


def test_a_failed_jobs_page_says_it_stopped_with_an_error_and_keeps_the_traceback_apart(persian):
    failed = job(
        id="bad1",
        name="bad-job",
        func=tasks.RUN_DRAW,
        args=("1405/09", "operator"),
        success=False,
        result="boom : Traceback (most recent call last):\n  File x\nValueError: boom",
    )
    page = persian.get(reverse("admin:django_q_failure_change", args=(failed.pk,)))
    text = text_of(page)
    assert "ماه: آذر ۱۴۰۵" in text and "آغازکننده:" in text
    assert "این کار با خطا متوقف شد" in text
    assert "Traceback" not in text  # inside <pre>, as the program wrote it
    assert "<pre" in page.content.decode() and "ValueError: boom" in page.content.decode()


def test_the_queue_shows_each_job_and_when_it_was_queued_not_its_payload(persian, monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: STARTED)
    async_task(tasks.SWEEP_PENDING_PAYMENTS)
    queued = OrmQ.objects.get()
    listing = text_of(persian.get(reverse("admin:django_q_ormq_changelist")))
    assert "تلاش دوباره برای تأییدهای در انتظار بیت‌پین، در ۱۴۰۵/۰۹/۱۱ ۱۱:۰۰ در صف گذاشته شد" in listing
    page = persian.get(reverse("admin:django_q_ormq_change", args=(queued.pk,)))
    assert queued.payload not in page.content.decode()
    assert "۱۴۰۵/۰۹/۱۱ ۱۱:۰۰" in text_of(page)


def test_a_schedules_next_run_is_shown_and_typed_as_a_jalali_date_in_tehran_time(persian):
    schedule = Schedule.objects.create(
        name="sweep", func=tasks.SWEEP_PENDING_PAYMENTS, schedule_type=Schedule.MINUTES, minutes=5, next_run=STARTED
    )
    url = reverse("admin:django_q_schedule_change", args=(schedule.pk,))
    form = persian.get(url)
    assert 'value="۱۴۰۵/۰۹/۱۱ ۱۱:۰۰"' in form.content.decode()
    data = {
        "name": "sweep",
        "func": tasks.SWEEP_PENDING_PAYMENTS,
        "schedule_type": Schedule.MINUTES,
        "minutes": "5",
        "cron": "",
        "repeats": "-1",
        "next_run": "۱۴۰۵/۰۹/۱۲ ۰۲:۳۰",
    }
    response = persian.post(url, data)
    assert response.status_code == 302, text_of(response)
    schedule.refresh_from_db()
    assert schedule.next_run == dt.datetime(2026, 12, 3, 2, 30, tzinfo=TEHRAN)
    assert schedule.next_run.astimezone(dt.UTC).hour == 23  # stored in UTC: 02:30 in Tehran is 23:00 the day before


def test_a_next_run_that_is_not_a_jalali_date_is_refused_on_its_field_in_persian(persian):
    schedule = Schedule.objects.create(name="sweep", func=tasks.SWEEP_PENDING_PAYMENTS, next_run=STARTED)
    url = reverse("admin:django_q_schedule_change", args=(schedule.pk,))
    data = {"name": "sweep", "func": tasks.SWEEP_PENDING_PAYMENTS, "schedule_type": "O", "repeats": "-1"}
    for typed in ("2026-12-02", "1405/13/01 10:00", "1405/09/11 25:00"):
        response = persian.post(url, {**data, "next_run": typed})
        assert response.status_code == 200
        assert "تاریخ و ساعت شمسی" in " ".join(response.context["adminform"].form.errors["next_run"])
    schedule.refresh_from_db()
    assert schedule.next_run == STARTED


def test_a_schedule_opens_from_its_list_and_saghats_own_keep_their_name(persian):
    ensure_schedules()
    listing = persian.get(reverse("admin:django_q_schedule_changelist")).content.decode()
    schedule = Schedule.objects.get(func=tasks.SWEEP_PENDING_PAYMENTS)
    url = reverse("admin:django_q_schedule_change", args=(schedule.pk,))
    assert f'href="{url}"' in listing
    page = persian.get(url)
    form = page.context["adminform"].form
    assert "name" not in form.fields  # fund.schedules finds it by that name
    assert Schedule.CRON not in [value for value, _label in form.fields["schedule_type"].choices]  # no croniter
    assert "cron" not in form.fields
    assert "fund.tasks" not in text_of(page)
