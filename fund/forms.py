"""The member page's forms. They only parse what the member typed; the rules live in fund.payments.

The month and the member are never form fields: the view always uses the current Jalali month and
the logged-in member, so editing the form cannot pay for someone else or for another month.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from fund.money import ZERO, AmountFormField


class PaymentForm(forms.Form):
    fee = AmountFormField(label=_("Membership fee (USDT)"))
    repayment = AmountFormField(label=_("Loan repayment (USDT)"))
    bitpin_id = forms.CharField(
        label=_("Bitpin payment id"),
        max_length=100,
        help_text=_("The id Bitpin shows for your transfer."),
        widget=forms.TextInput(attrs={"dir": "ltr", "autocomplete": "off", "maxlength": 100}),
    )
    loan_request = AmountFormField(
        label=_("New loan request (USDT, optional)"),
        required=False,
        help_text=_("Leave empty to keep your current request; 0 means you are not asking for a loan."),
    )

    def __init__(self, *args: Any, has_loan: bool, **kwargs: Any) -> None:
        """``has_loan``: this month's payment repays a loan (see fund.payments.repayment_due)."""
        super().__init__(*args, **kwargs)
        if not has_loan:
            # Nothing to repay this month: no repayment may be given (DESIGN.md, "Payment", rule 4).
            del self.fields["repayment"]

    def repayment_amount(self) -> Decimal:
        return self.cleaned_data.get("repayment") or ZERO


class LoanRequestForm(forms.Form):
    amount = AmountFormField(
        label=_("Loan request (USDT)"),
        help_text=_("What you want to borrow if you are chosen; 0 means you are not asking."),
    )

    def attach_refusal(self, field: str | None, message: str) -> None:
        self.add_error("amount" if field in ("amount", "loan_request") else None, message)
