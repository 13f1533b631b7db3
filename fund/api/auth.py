"""/api/auth/…: logging in, my profile and loan request, and the operator's members."""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth import user_logged_in
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Router, Status
from ninja.errors import HttpError

from fund import ledger, members, payments, security
from fund.admin.members import MemberCreationForm
from fund.admin.roles import is_operator
from fund.api import schemas
from fund.api.errors import responses
from fund.api.tokens import bearer, issue_token, operator_only
from fund.jalali import JalaliMonth
from fund.models import User

router = Router(tags=["auth"])


@router.post("/login", summary="Log in", auth=None, response=responses({200: schemas.LoginOut}, 401, 422, 429))
def login(request: HttpRequest, payload: schemas.LoginIn) -> schemas.LoginOut:
    """A bearer token for a user name and password. Failed logins are throttled like the login page."""
    # The login page's path: django-axes counts this attempt and refuses a paused user name and address.
    user = security.authenticate_throttled(request, username=payload.username, password=payload.password)
    if security.is_locked_out(request):
        raise HttpError(429, security.locked_out_message())
    if user is None:
        raise HttpError(401, _("Wrong user name or password."))
    # No session is opened, so Django's login() is not called; its signal still says who logged in
    # (last login, and django-axes forgets this user name's failures at this address).
    user_logged_in.send(sender=user.__class__, request=request, user=user)
    return schemas.LoginOut(
        access_token=issue_token(user), user_id=user.pk, username=user.username, is_main=is_operator(user)
    )


@router.get("/me", summary="My profile", auth=bearer, response=responses({200: schemas.UserOut}, 401))
def me(request: HttpRequest) -> schemas.UserOut:
    """My profile: balance (verified fees), loan request and whether I have a loan to repay."""
    return user_out(_standing(User.objects.filter(pk=request.auth.pk)).get())


@router.patch(
    "/me/loan-request",
    summary="Change my loan request",
    auth=bearer,
    response=responses({200: schemas.UserOut}, 400, 401, 403, 422),
)
def change_loan_request(request: HttpRequest, payload: schemas.LoanRequestIn) -> schemas.UserOut:
    """How much I ask to borrow if chosen; 0 means I am not asking."""
    member = require_member(request)
    try:
        payments.change_loan_request(member=member, amount=payload.loan_request_amount)
    except payments.PaymentRefused as refused:
        raise HttpError(400, refused.message) from None
    return user_out(_standing(User.objects.filter(pk=member.pk)).get())


@router.post(
    "/users",
    summary="Create a member",
    auth=operator_only,
    response=responses({201: schemas.UserOut}, 400, 401, 403, 422),
)
def create_user(request: HttpRequest, payload: schemas.MemberIn) -> Status:
    """Create a member (operator). Without a password the member chooses one through a link."""
    member = create_member(
        username=payload.username,
        password=payload.password,
        first_name=payload.first_name,
        last_name=payload.last_name,
        email=payload.email,
        loan_request_amount=payload.loan_request_amount,
    )
    return Status(201, user_out(_standing(User.objects.filter(pk=member.pk)).get()))


@router.get(
    "/users", summary="List the members", auth=operator_only, response=responses({200: list[schemas.UserOut]}, 401, 403)
)
def list_users(request: HttpRequest) -> list[schemas.UserOut]:
    """Every member, active or not, by user name (operator)."""
    return [user_out(user) for user in _standing(User.objects.filter(is_member=True)).order_by("username")]


# --- helpers shared by the routers -------------------------------------------------------------------


def require_member(request: HttpRequest) -> User:
    """The token's user when they are an active member of the fund; 403 otherwise."""
    user = request.auth
    if not user.is_fund_member:
        raise HttpError(403, _("Only an active member of the fund may do this."))
    return user


def _standing(users: QuerySet[User]) -> QuerySet[User]:
    return ledger.members_with_standing(JalaliMonth.current(), users)


def user_out(user: User) -> schemas.UserOut:
    """``user`` annotated by ledger.members_with_standing."""
    return schemas.UserOut(
        id=user.pk,
        username=user.username,
        first_name=user.first_name,
        last_name=user.last_name,
        email=user.email,
        is_main=is_operator(user),
        balance=user.balance,
        loan_request_amount=user.loan_request_amount,
        has_active_loan=user.has_active_loan,
    )


def create_member(
    *,
    username: str,
    password: str | None,
    first_name: str,
    last_name: str,
    email: str,
    loan_request_amount: Decimal | None,
) -> User:
    """A new member through fund.members.create_member, checked by the admin's add form.

    The form checks the user name (valid, not taken), the e-mail and the loan request. A password
    is the original API's: when the client gives one it must pass Django's password validators;
    without one the member chooses theirs through the set-password link, as from the admin.
    """
    data = {
        "username": username,
        "first_name": first_name,
        "last_name": last_name,
        "email": email,
        "is_member": True,
        "loan_request_amount": "0" if loan_request_amount is None else str(loan_request_amount),
    }
    form = MemberCreationForm(data=data)
    if not form.is_valid():
        raise HttpError(400, _first_error(form.errors.get_json_data()))
    if password is not None:
        try:
            validate_password(password, user=form.instance)
        except ValidationError as error:
            raise HttpError(400, " ".join(error.messages)) from None
    with transaction.atomic():
        member = members.create_member(form.save(commit=False))
        if password is not None:
            member.set_password(password)
            members.save_member(member, fields=["password"])
    return member


def _first_error(errors: dict[str, list[dict[str, str]]]) -> str:
    field, problems = next(iter(errors.items()))
    label = MemberCreationForm.base_fields[field].label if field in MemberCreationForm.base_fields else ""
    message = problems[0]["message"]
    return f"{label}: {message}" if label else message
