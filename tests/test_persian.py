"""Persian digits in a page's text, never in its markup (fund.persian)."""

from __future__ import annotations

from fund.persian import persian_digits_in_html


def test_an_attribute_holding_a_greater_than_sign_keeps_its_digits():
    html = """<div x-bind:class="{'border-t': items.length > 0}" data-n='a > 2'>Page 12</div>"""
    assert persian_digits_in_html(html) == (
        """<div x-bind:class="{'border-t': items.length > 0}" data-n='a > 2'>Page ۱۲</div>"""
    )


def test_text_kept_as_typed_stays_as_typed_after_such_an_attribute():
    html = """<span x-show="n > 1" translate="no">bp-12 3</span> 45"""
    assert persian_digits_in_html(html) == """<span x-show="n > 1" translate="no">bp-12 3</span> ۴۵"""
