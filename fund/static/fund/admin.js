/* The back office's additions to unfold's scripts (linked from config/unfold.py, SCRIPTS).
   Loaded after Chart.js and before unfold's app.js, which draws the charts once the page is read. */

(function () {
  "use strict";
  if (typeof Chart === "undefined" || !(document.documentElement.lang || "").startsWith("fa")) {
    return;
  }
  const PERSIAN = "۰۱۲۳۴۵۶۷۸۹";
  const persian = (text) =>
    String(text)
      .replace(/(\d),(?=\d)/g, "$1٬")
      .replace(/(\d)\.(?=\d)/g, "$1٫")
      .replace(/\d/g, (digit) => PERSIAN[digit]);

  // Tooltips format their values with the chart's locale: Persian digits and separators.
  Chart.defaults.locale = "fa-IR";
  // Axis labels are made by unfold's own tick callbacks (a bare number on the value axis): every
  // scale writes them in Persian digits once they are made. Chart.js calls this hook on each scale
  // (an "after…" option, never treated as a scriptable value).
  Chart.defaults.scale.afterTickToLabelConversion = (scale) => {
    for (const tick of scale.ticks) {
      tick.label = Array.isArray(tick.label) ? tick.label.map(persian) : persian(tick.label);
    }
  };
})();
