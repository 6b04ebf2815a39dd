// Reported KPIs on the page: a form to enter (or correct) a period's value, a CSV upload,
// and the values entered so far with who entered them. Values are written with the admin
// token for now (kept for this browser tab only); personal sign-in will replace it.
(function () {
  "use strict";

  var TOKEN_KEY = "kpipulse.adminToken";

  function el(tag, attrs) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") node.textContent = attrs[name];
      else node.setAttribute(name, attrs[name]);
    });
    for (var i = 2; i < arguments.length; i++) {
      if (arguments[i]) node.appendChild(arguments[i]);
    }
    return node;
  }

  function labelled(text, input) {
    return el("label", { class: "reported-field" }, el("span", { text: text }), input);
  }

  function problemsOf(body, status) {
    var detail = body && body.detail;
    if (detail && Array.isArray(detail.problems)) return detail.problems;
    if (typeof detail === "string") return [detail];
    if (Array.isArray(detail)) {
      return detail.map(function (d) { return (d.loc || []).slice(1).join(".") + ": " + d.msg; });
    }
    return ["HTTP " + status];
  }

  function send(url, init) {
    var token = sessionStorage.getItem(TOKEN_KEY) || "";
    init.headers = Object.assign({ Authorization: "Bearer " + token }, init.headers || {});
    return fetch(url, init).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (body) {
        if (!response.ok) throw new Error(problemsOf(body, response.status).join("; "));
        return body;
      });
    });
  }

  function isReported(definition) {
    var formula = definition && definition.formula;
    return formula === "reported" || !!(formula && typeof formula === "object" && "reported" in formula);
  }

  // The section for one reported KPI; ``onSaved`` refreshes the detail view; ``translate``
  // is the page's translate function (shared/i18n catalogs), English when absent.
  function section(key, onSaved, translate) {
    var t = translate || function (msgid, params) {
      return msgid.replace(/\{(\w+)\}/g, function (all, name) { return params && name in params ? String(params[name]) : all; });
    };
    var base = "/v1/kpis/" + encodeURIComponent(key) + "/values";
    var period = el("select", { name: "period_start", id: "reported-period" });
    var value = el("input", { name: "value", id: "reported-value", type: "number", step: "any", required: "required" });
    var note = el("input", { name: "note", id: "reported-note", type: "text", maxlength: "500" });
    var token = el("input", { name: "token", id: "reported-token", type: "password", autocomplete: "off" });
    token.value = sessionStorage.getItem(TOKEN_KEY) || "";
    var save = el("button", { type: "submit", id: "reported-save", text: t("Save value") });
    var message = el("p", { class: "reported-message", id: "reported-message", role: "status" });
    var form = el("form", { class: "reported-form", id: "reported-form" },
      labelled(t("Period"), period), labelled(t("Value"), value), labelled(t("Note"), note),
      labelled(t("Admin token"), token), save);
    var file = el("input", { type: "file", id: "reported-file", accept: ".csv,text/csv" });
    var upload = el("button", { type: "button", id: "reported-upload", text: t("Upload CSV") });
    var csvHelp = el("p", { class: "muted", text: t("CSV columns: kpi_key,period_start,value,note (all rows or none).") });
    var list = el("table", { class: "reported-values", id: "reported-values" });

    function say(text, failed) {
      message.textContent = text;
      message.className = "reported-message" + (failed ? " error" : "");
    }

    function remember() { sessionStorage.setItem(TOKEN_KEY, token.value.trim()); }

    function refresh() {
      return fetch(base).then(function (r) { return r.json(); }).then(function (data) {
        var chosen = period.value;
        period.textContent = "";
        (data.periods || []).forEach(function (day) {
          period.appendChild(el("option", { value: day, text: day }));
        });
        if (chosen) period.value = chosen;
        list.textContent = "";
        list.appendChild(el("tr", {}, el("th", { text: t("Period") }), el("th", { text: t("Value") }),
          el("th", { text: t("Note") }), el("th", { text: t("Entered by") }), el("th", { text: t("At") })));
        (data.values || []).slice().reverse().forEach(function (v) {
          list.appendChild(el("tr", {}, el("td", { text: v.period_start }), el("td", { text: String(v.value) }),
            el("td", { text: v.note || "" }), el("td", { text: v.entered_by }),
            el("td", { text: new Date(v.entered_at).toLocaleString() })));
        });
      }).catch(function () { say(t("Could not load the values entered so far."), true); });
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      remember();
      var body = { period_start: period.value, value: Number(value.value) };
      if (note.value.trim()) body.note = note.value.trim();
      send(base, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      }).then(function (saved) {
        say(saved.corrected
          ? t("Corrected {period}: {value} (was {previous}).", { period: saved.period_start, value: saved.value, previous: saved.previous })
          : t("Saved {period}: {value}.", { period: saved.period_start, value: saved.value }));
        value.value = "";
        note.value = "";
        return refresh().then(onSaved);
      }).catch(function (err) { say(err.message, true); });
    });

    upload.addEventListener("click", function () {
      remember();
      var chosen = file.files && file.files[0];
      if (!chosen) { say(t("Choose a CSV file first."), true); return; }
      chosen.text().then(function (text) {
        return send("/v1/values/import", {
          method: "POST", headers: { "Content-Type": "text/csv" }, body: text,
        });
      }).then(function (result) {
        say(t("Imported {n} value(s).", { n: result.imported }));
        return refresh().then(onSaved);
      }).catch(function (err) { say(err.message, true); });
    });

    refresh();
    return el("section", { class: "detail-section reported", "aria-labelledby": "reported-heading" },
      el("h3", { id: "reported-heading", text: t("Enter a value") }), form,
      el("div", { class: "reported-upload" }, file, upload), csvHelp, message, list);
  }

  window.KpiPulseReported = { isReported: isReported, section: section };
})();
