"""Import/export admin mixins (owned by the spreadsheet import work). Placeholders until then."""


class MemberImportExportMixin:
    pass


class LoanImportExportMixin:
    pass


class PaymentImportExportMixin:
    pass
