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


def test_numbers_in_text_get_persian_digits_and_separators_and_the_middle_dot_a_persian_comma():
    html = "<p>1,234.50 USDT · 19 روز</p><p>member12 a1@example.org</p><p>۱۲ and 3</p>"
    assert persian_digits_in_html(html) == "<p>۱٬۲۳۴٫۵۰ USDT، ۱۹ روز</p><p>member12 a1@example.org</p><p>۱۲ and ۳</p>"


def test_code_scripts_styles_textareas_and_nested_kept_elements_keep_their_digits():
    html = (
        "<pre>10</pre><code>20</code><script>var a = 30;</script><style>b{width:40px}</style>"
        "<textarea>50</textarea><span translate='no'>60 <span>70</span> <code>80</code> 90</span> 100"
        "<div translate=no><div>110</div>120</div>130<br/>140<img src='150.png'>160"
    )
    assert persian_digits_in_html(html) == (
        "<pre>10</pre><code>20</code><script>var a = 30;</script><style>b{width:40px}</style>"
        "<textarea>50</textarea><span translate='no'>60 <span>70</span> <code>80</code> 90</span> ۱۰۰"
        "<div translate=no><div>110</div>120</div>۱۳۰<br/>۱۴۰<img src='150.png'>۱۶۰"
    )
