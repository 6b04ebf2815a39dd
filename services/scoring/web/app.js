/* KPI Pulse scorecard page.
 *
 * Plain browser JavaScript, no build step: it polls the scoring API (same origin) and the
 * alerts API (base URL from <meta name="kpipulse-alerts-api">) every few seconds and
 * updates the DOM in place, keyed by KPI key and alert id, so that the sparklines are not
 * rebuilt and screen readers only hear what changed. Charts are drawn by uPlot (vendored).
 *
 * Hooks the browser tests rely on: every KPI card has data-kpi and data-status, every
 * alert item has data-alert-kpi (and data-alert-condition).
 *
 * Every read needs a signed-in user: the page asks GET /v1/session who it is, shows the
 * sign-in form when nobody is, and sends the session's CSRF token (X-CSRF-Token) with
 * every request that changes something. The session cookie itself is HttpOnly.
 */
(function () {
  "use strict";

  var I18N = readI18n();
  var LOCALE = I18N.locale || undefined;

  var REFRESH_MS = 5000;
  var FETCH_TIMEOUT_MS = 8000;
  // Only for an API that does not say (older scoring); the API's expiry facts come from the
  // company's calendar and alerts' own warning days.
  var EXPIRY_WARNING_DAYS = 14;
  var DAY_MS = 86400000;

  var PERSPECTIVES = [
    { key: "financial", label: t("Financial"), question: t("How do we turn the value we create into profit?") },
    { key: "customer", label: t("Customer"), question: t("What value do customers get, and do they notice it?") },
    { key: "internal_process", label: t("Internal process"), question: t("Which processes attract, engage and retain customers?") },
    { key: "learning_growth", label: t("Learning & growth"), question: t("Which skills and knowledge must the team grow?") },
  ];
  var STATUS = {
    breach: { label: t("Breach"), icon: "✖" },
    below_target: { label: t("Below target"), icon: "▲" },
    on_target: { label: t("On target"), icon: "✔" },
    no_data: { label: t("No data"), icon: "○" },
  };
  var CONDITIONS = {
    below_minimum: { label: t("Below minimum"), rank: 0 },
    early_warning: { label: t("Early warning"), rank: 1 },
    stale: { label: t("Stale data"), rank: 2 },
    expired: { label: t("Expired"), rank: 3 },
    expiring_soon: { label: t("Expiring soon"), rank: 4 },
  };
  var STATUS_COLOURS = {
    breach: "#c62828",
    below_target: "#b45309",
    on_target: "#2e7d32",
    no_data: "#6b7280",
  };

  var alertsBase = readAlertsBase();
  var state = {
    kpis: new Map(), // key -> latest KPI object
    cards: new Map(), // key -> card element
    sparks: new Map(), // key -> {chart, sig}
    sections: new Map(), // perspective -> {section, grid, score}
    alertItems: new Map(), // alert id -> li
    alertsByKpi: new Map(), // kpi key -> [alerts]
    errors: new Map(), // source -> message
    errorsDismissed: "",
    lastUpdate: null,
    timer: null,
    inFlight: false,
    detail: null, // {key, chart, range, els}
    filter: readFilter(), // {department, owner}: kept in the URL so a link keeps the view
    scorecard: null, // the last /v1/scorecard answer (tiles when no filter is set)
  };

  // ---------------------------------------------------------------- small helpers

  /* The page's language: the server embeds the locale and its catalog (shared/i18n). */
  function readI18n() {
    var el = document.getElementById("kpipulse-i18n");
    try {
      var data = el ? JSON.parse(el.textContent || "{}") : {};
      return { locale: data.locale || "", messages: data.messages || {} };
    } catch (e) {
      return { locale: "", messages: {} };
    }
  }

  /* Translates an English msgid and fills its {name} placeholders. */
  function t(msgid, params) {
    var text = Object.prototype.hasOwnProperty.call(I18N.messages, msgid) ? I18N.messages[msgid] : msgid;
    if (!params) return text;
    return text.replace(/\{(\w+)\}/g, function (all, name) {
      return Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : all;
    });
  }

  /* The company's time zone (<meta name="kpipulse-time-zone">): times and dates on the page
   * are on its calendar, like review periods, expiry and alert notices. */
  function readTimeZone() {
    var meta = document.querySelector('meta[name="kpipulse-time-zone"]');
    var value = meta ? (meta.getAttribute("content") || "").trim() : "";
    if (!value || value.indexOf("{{") !== -1) return undefined;
    try {
      new Intl.DateTimeFormat(undefined, { timeZone: value });
      return value;
    } catch (e) {
      return undefined;
    }
  }
  var TIME_ZONE = readTimeZone();

  function readAlertsBase() {
    var meta = document.querySelector('meta[name="kpipulse-alerts-api"]');
    var value = meta ? (meta.getAttribute("content") || "").trim() : "";
    // An unfilled template placeholder means "same origin".
    if (value.indexOf("{{") !== -1) return "";
    return value.replace(/\/+$/, "");
  }

  function h(tag, attrs) {
    var el = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (name) {
        var value = attrs[name];
        if (value === null || value === undefined || value === false) return;
        if (name === "text") el.textContent = String(value);
        else if (name === "className") el.className = value;
        else el.setAttribute(name, value === true ? "" : String(value));
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined || child === false) continue;
      el.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return el;
  }

  function isNum(v) {
    return typeof v === "number" && isFinite(v);
  }

  var session = { csrf: null, email: null };

  function SignedOut(message) {
    this.name = "SignedOut";
    this.message = message || "signed out";
  }
  SignedOut.prototype = Object.create(Error.prototype);

  function fetchJson(url, options) {
    options = options || {};
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, FETCH_TIMEOUT_MS) : null;
    var headers = { Accept: "application/json" };
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    var method = options.method || "GET";
    if (method !== "GET" && session.csrf) headers["X-CSRF-Token"] = session.csrf;
    return fetch(url, {
      method: method,
      headers: headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      cache: "no-store",
      // The alerts API may live on another port: the session cookie goes there too.
      credentials: "include",
      signal: controller ? controller.signal : undefined,
    })
      .then(function (response) {
        if (response.status === 401 && !options.quiet401) {
          showSignIn(t("Your session ended: sign in again."));
          throw new SignedOut();
        }
        if (!response.ok) {
          return response.json().catch(function () { return {}; }).then(function (payload) {
            var detail = payload && typeof payload.detail === "string" ? payload.detail : "";
            var err = new Error(detail || "HTTP " + response.status);
            err.status = response.status;
            throw err;
          });
        }
        if (response.status === 204) return null;
        return response.json();
      })
      .catch(function (err) {
        if (err && err.name === "AbortError") throw new Error(t("timed out"));
        throw err instanceof Error ? err : new Error(String(err));
      })
      .finally(function () {
        if (timer) clearTimeout(timer);
      });
  }

  function kpiUrl(key) {
    return "/v1/kpis/" + encodeURIComponent(key);
  }

  function detailHref(key) {
    return "#/kpi/" + encodeURIComponent(key);
  }

  // ---------------------------------------------------------------- formatting

  var nf = {};
  function numberFormat(maxFrac, minFrac) {
    var id = maxFrac + ":" + (minFrac || 0);
    if (!nf[id]) {
      nf[id] = new Intl.NumberFormat(LOCALE, {
        maximumFractionDigits: maxFrac,
        minimumFractionDigits: minFrac || 0,
      });
    }
    return nf[id];
  }

  function plain(v) {
    var abs = Math.abs(v);
    return numberFormat(abs >= 100 ? 0 : abs >= 10 ? 1 : 2).format(v);
  }

  function isPercentUnit(unit) {
    return unit === "ratio" || unit === "percent" || unit === "%";
  }

  function isCurrency(unit) {
    return typeof unit === "string" && /^[A-Z]{3}$/.test(unit);
  }

  function formatValue(v, unit) {
    if (!isNum(v)) return "—";
    if (isPercentUnit(unit)) {
      var pct = v * 100;
      return numberFormat(Math.abs(pct) >= 10 ? 1 : 2).format(pct) + " %";
    }
    if (isCurrency(unit)) {
      try {
        // Large amounts in whole units; otherwise the currency's own digits (VND has none).
        var options = { style: "currency", currency: unit };
        if (Math.abs(v) >= 1000) {
          options.maximumFractionDigits = 0;
          options.minimumFractionDigits = 0;
        }
        return new Intl.NumberFormat(LOCALE, options).format(v);
      } catch (e) {
        return plain(v) + " " + unit;
      }
    }
    if (unit === "minutes") return t("{n} min", { n: plain(v) });
    if (unit === "hours") return t("{n} h", { n: plain(v) });
    if (unit === "seconds") return t("{n} s", { n: plain(v) });
    if (!unit || unit === "count") return plain(v);
    return plain(v) + " " + unit;
  }

  /* A difference of two values (a gap or a change): signed, in the value's unit. */
  function formatDelta(v, unit) {
    if (!isNum(v)) return "—";
    var sign = v > 0 ? "+" : v < 0 ? "−" : "±";
    if (isPercentUnit(unit)) {
      return sign + numberFormat(2).format(Math.abs(v) * 100) + " pp";
    }
    return sign + formatValue(Math.abs(v), unit);
  }

  /* Minimum and target on a card: the value above already carries a long unit. */
  function formatThreshold(v, unit) {
    if (isPercentUnit(unit) || isCurrency(unit) || unit === "minutes" || unit === "hours" || unit === "seconds") {
      return formatValue(v, unit);
    }
    return isNum(v) ? plain(v) : "—";
  }

  function formatScore(score) {
    return isNum(score) ? String(Math.round(score)) : "—";
  }

  function formatTime(iso) {
    if (!iso) return "—";
    var d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    return d.toLocaleString(LOCALE, {
      month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZone: TIME_ZONE,
    });
  }

  function formatDate(iso) {
    if (!iso) return "—";
    var d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    return d.toLocaleDateString(LOCALE, { year: "numeric", month: "short", day: "numeric", timeZone: TIME_ZONE });
  }

  function ago(iso) {
    var at = Date.parse(iso);
    if (isNaN(at)) return "";
    var s = Math.max(0, Math.round((Date.now() - at) / 1000));
    if (s < 60) return t("{n} s ago", { n: s });
    if (s < 3600) return t("{n} min ago", { n: Math.round(s / 60) });
    if (s < 86400) return t("{n} h ago", { n: Math.round(s / 3600) });
    return t("{n} d ago", { n: Math.round(s / 86400) });
  }

  function humanize(key) {
    return String(key || "").replace(/_/g, " ");
  }

  /* A catalog keyword (stage, indicator, period) in the page's language; the keywords
   * are listed for the catalogs in shared/i18n/extract.py (CATALOG_KEYWORDS). */
  function translatedKey(key) {
    return key ? t(humanize(key)) : "";
  }

  function perspectiveLabel(key) {
    var meta = PERSPECTIVES.filter(function (p) { return p.key === key; })[0];
    return meta ? meta.label : translatedKey(key);
  }

  /* "30d" / "1h" / "15m" -> seconds (the catalog's duration format). */
  function durationSeconds(text) {
    var m = /^(\d+)\s*([smhdw])$/.exec(String(text || "").trim());
    if (!m) return null;
    var mult = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2]];
    return parseInt(m[1], 10) * mult;
  }

  /* ``facts``: the API's expired / expiring_soon / expires_in_days, from the company's
   * calendar; the browser's own date is only a fallback. */
  function expiryInfo(isoDate, facts) {
    var m = /^(\d{4})-(\d{2})-(\d{2})/.exec(String(isoDate || ""));
    if (!m) return { text: "—", cls: "" };
    // Numeric (31/03/2027 in Vietnamese): it fits a card's narrow column in any language.
    var date = new Date(+m[1], +m[2] - 1, +m[3]).toLocaleDateString(LOCALE, {
      year: "numeric", month: "2-digit", day: "2-digit",
    });
    var known = facts && typeof facts.expired === "boolean" && isNum(facts.expires_in_days);
    var days;
    if (known) {
      days = facts.expires_in_days;
    } else {
      var expires = new Date(+m[1], +m[2] - 1, +m[3]);
      var now = new Date();
      var today = new Date(now.getFullYear(), now.getMonth(), now.getDate());
      days = Math.round((expires - today) / DAY_MS);
    }
    if (known ? facts.expired : days < 0) {
      return {
        text: date + " · " + t("expired: not in the scorecard until renewed"), date: date,
        note: t("expired"), title: t("Expired: left out of the scorecard until renewed"),
        cls: "expired", days: days,
      };
    }
    if (known ? facts.expiring_soon : days <= EXPIRY_WARNING_DAYS) {
      var soon = days === 0 ? t("expires today") : t("in {n} d", { n: days });
      return { text: date + " · " + soon, date: date, note: soon, cls: "expiring", days: days };
    }
    return { text: date, date: date, note: "", cls: "", days: days };
  }

  // ---------------------------------------------------------------- views: department, owner

  function readFilter() {
    var params = new URLSearchParams(location.search);
    return { department: params.get("department") || "", owner: params.get("owner") || "" };
  }

  function currentUser() {
    var meta = document.querySelector('meta[name="kpipulse-user"]');
    return meta ? (meta.getAttribute("content") || "").trim() : "";
  }

  function ownerId(o) {
    return o ? String(o.email || o.name || "") : "";
  }

  function matchesFilter(kpi) {
    var f = state.filter;
    if (f.department && (kpi.department || "") !== f.department) return false;
    if (f.owner) {
      var wanted = f.owner.toLowerCase();
      return (kpi.owners || []).some(function (o) {
        return o && (String(o.email || "").toLowerCase() === wanted || String(o.name || "").toLowerCase() === wanted);
      });
    }
    return true;
  }

  function filterActive() {
    return !!(state.filter.department || state.filter.owner);
  }

  /* The view's query string: the filter and the language, as a link would carry them. */
  function viewQuery(extra) {
    var params = new URLSearchParams();
    if (state.filter.department) params.set("department", state.filter.department);
    if (state.filter.owner) params.set("owner", state.filter.owner);
    if (I18N.locale) params.set("lang", I18N.locale);
    Object.keys(extra || {}).forEach(function (k) { params.set(k, extra[k]); });
    var text = params.toString();
    return text ? "?" + text : "";
  }

  function setFilter(department, owner) {
    state.filter = { department: department || "", owner: owner || "" };
    history.replaceState(null, "", location.pathname + viewQuery() + location.hash);
    applyFilter();
  }

  function fillSelect(select, values, labels) {
    var current = select.value;
    var wanted = values.map(function (v) { return v; });
    var existing = Array.prototype.slice.call(select.options, 1).map(function (o) { return o.value; });
    if (existing.join("\n") !== wanted.join("\n")) {
      while (select.options.length > 1) select.remove(1);
      values.forEach(function (v) { select.appendChild(h("option", { value: v }, labels[v] || v)); });
    }
    select.value = current;
  }

  function renderFilterOptions() {
    var departments = new Set();
    var owners = new Map();
    state.kpis.forEach(function (k) {
      if (k.department) departments.add(k.department);
      (k.owners || []).forEach(function (o) { if (ownerId(o)) owners.set(ownerId(o), o.name || ownerId(o)); });
    });
    var f = state.filter;
    // A filter from a link stays selectable even before (or without) a matching KPI.
    if (f.department) departments.add(f.department);
    if (f.owner && !owners.has(f.owner)) owners.set(f.owner, f.owner);
    var deptSelect = document.getElementById("filter-department");
    var ownerSelect = document.getElementById("filter-owner");
    var deptLabels = {};
    departments.forEach(function (d) { deptLabels[d] = humanize(d); });
    var ownerLabels = {};
    owners.forEach(function (name, id) { ownerLabels[id] = name; });
    fillSelect(deptSelect, Array.from(departments).sort(), deptLabels);
    fillSelect(ownerSelect, Array.from(owners.keys()).sort(function (a, b) {
      return String(ownerLabels[a]).localeCompare(String(ownerLabels[b]), LOCALE);
    }), ownerLabels);
    deptSelect.value = f.department;
    ownerSelect.value = f.owner;
  }

  /* Weighted mean of scores, skipping KPIs without one (as the server's scorecard does). */
  function weightedScore(kpis) {
    var sum = 0;
    var weights = 0;
    kpis.forEach(function (k) {
      if (!isNum(k.score)) return;
      var w = isNum(k.weight) ? k.weight : 1;
      sum += k.score * w;
      weights += w;
    });
    return weights > 0 ? sum / weights : null;
  }

  function applyFilter() {
    var visible = [];
    state.cards.forEach(function (card, key) {
      var kpi = state.kpis.get(key);
      var show = !kpi || matchesFilter(kpi);
      card.hidden = !show;
      if (show && kpi) visible.push(kpi);
    });
    state.sections.forEach(function (entry) {
      var shown = Array.prototype.some.call(entry.grid.children, function (c) { return !c.hidden; });
      entry.grid.classList.toggle("is-empty", !shown);
      entry.grid.setAttribute("data-empty-text", shown ? "" :
        filterActive() ? t("No KPI of this view in this perspective.") : t("No KPI in this perspective."));
    });
    state.alertItems.forEach(function (li) {
      var kpi = state.kpis.get(li.getAttribute("data-alert-kpi"));
      li.hidden = !!kpi && !matchesFilter(kpi);
    });
    if (filterActive()) renderFilteredTiles(visible);
    else if (state.scorecard) renderScorecard(state.scorecard);
    var user = currentUser();
    var mine = document.getElementById("my-kpis");
    mine.hidden = !user;
    mine.setAttribute("aria-pressed", user && state.filter.owner === user ? "true" : "false");
    document.getElementById("export-csv").setAttribute("href", "/v1/kpis/export.csv" + viewQuery());
    document.querySelectorAll(".lang-switch a").forEach(function (a) {
      var lang = a.getAttribute("data-lang");
      var params = new URLSearchParams(viewQuery().slice(1));
      params.set("lang", lang);
      a.setAttribute("href", "?" + params.toString() + location.hash);
      a.setAttribute("aria-current", lang === I18N.locale ? "true" : "false");
    });
    var parts = [];
    if (state.filter.department) parts.push(t("Department") + ": " + humanize(state.filter.department));
    if (state.filter.owner) {
      var label = document.getElementById("filter-owner").selectedOptions[0];
      parts.push(t("Owner") + ": " + (label ? label.textContent : state.filter.owner));
    }
    parts.push(t("Printed {time}", { time: new Date().toLocaleString(LOCALE) }));
    document.getElementById("print-meta").textContent = parts.join(" · ");
  }

  function renderFilteredTiles(visible) {
    var tiles = document.getElementById("score-tiles");
    PERSPECTIVES.forEach(function (p) {
      var tile = tiles.querySelector('[data-perspective="' + p.key + '"]');
      var kpis = visible.filter(function (k) { return k.perspective === p.key; });
      var scored = kpis.filter(function (k) { return isNum(k.score); }).length;
      if (tile) setTile(tile, weightedScore(kpis), t("{n} of {total} KPIs scored", { n: scored, total: kpis.length }));
      var section = state.sections.get(p.key);
      var score = weightedScore(kpis);
      if (section) section.score.textContent = isNum(score) ? t("Score {n}", { n: formatScore(score) }) : t("No score yet");
    });
    var scoredAll = visible.filter(function (k) { return isNum(k.score); }).length;
    setTile(tiles.querySelector('[data-perspective="overall"]'), weightedScore(visible),
      t("{n} of {total} KPIs scored", { n: scoredAll, total: visible.length }));
  }

  // ---------------------------------------------------------------- error banner

  function setError(source, message) {
    if (message) state.errors.set(source, message);
    else state.errors.delete(source);
    renderErrors();
  }

  function renderErrors() {
    var banner = document.getElementById("error-banner");
    var parts = [];
    state.errors.forEach(function (msg, source) {
      parts.push(source + ": " + msg);
    });
    var text = parts.length
      ? t("Could not refresh {what}. Showing the last data received; retrying every {n} s.",
        { what: parts.join("; "), n: REFRESH_MS / 1000 })
      : "";
    if (!text) state.errorsDismissed = "";
    document.getElementById("error-text").textContent = text;
    banner.hidden = !text || text === state.errorsDismissed;
  }

  // ---------------------------------------------------------------- charts (uPlot)

  function chartsAvailable() {
    return typeof window.uPlot === "function";
  }

  function seriesFrom(points) {
    var xs = [];
    var ys = [];
    (points || []).forEach(function (p) {
      var at = Date.parse(p && p.at);
      if (isNaN(at)) return;
      xs.push(at / 1000);
      ys.push(isNum(p.value) ? p.value : null);
    });
    return [xs, ys];
  }

  function countValues(ys) {
    var n = 0;
    for (var i = 0; i < ys.length; i++) if (ys[i] !== null) n++;
    return n;
  }

  function thresholdLines(kpi, xs) {
    // For a target band the minimum is a tolerated distance, not a level: draw the target only.
    var band = kpi.direction === "target_band";
    var min = !band && isNum(kpi.minimum) ? kpi.minimum : null;
    var target = isNum(kpi.target) ? kpi.target : null;
    return [
      xs.map(function () { return min; }),
      xs.map(function () { return target; }),
    ];
  }

  function sparkData(kpi) {
    var s = seriesFrom(kpi.trend);
    var lines = thresholdLines(kpi, s[0]);
    return [s[0], s[1], lines[0], lines[1]];
  }

  function sparkOptions(kpi, width) {
    var colour = STATUS_COLOURS[kpi.status] || STATUS_COLOURS.no_data;
    return {
      width: Math.max(60, width),
      height: 44,
      pxAlign: false,
      cursor: { show: false },
      select: { show: false },
      legend: { show: false },
      scales: { x: { time: true } },
      axes: [{ show: false }, { show: false }],
      series: [
        {},
        { stroke: colour, width: 2, fill: colour + "1f", spanGaps: false, points: { show: false } },
        { stroke: STATUS_COLOURS.breach + "88", width: 1, dash: [3, 3], points: { show: false } },
        { stroke: STATUS_COLOURS.on_target + "88", width: 1, dash: [3, 3], points: { show: false } },
      ],
    };
  }

  function updateSparkline(card, kpi) {
    var box = card.querySelector(".sparkline");
    var existing = state.sparks.get(kpi.key);
    var data = sparkData(kpi);
    var enough = countValues(data[1]) >= 2;
    if (!chartsAvailable() || !enough) {
      if (existing) {
        existing.chart.destroy();
        state.sparks.delete(kpi.key);
      }
      box.classList.add("empty");
      box.textContent = !chartsAvailable() ? t("chart unavailable") : t("no trend yet");
      return;
    }
    box.classList.remove("empty");
    var sig = kpi.status;
    if (existing && existing.sig === sig) {
      existing.chart.setData(data);
      return;
    }
    if (existing) existing.chart.destroy();
    box.textContent = "";
    // uPlot is created in the hidden-from-AT box; its width follows the card (ResizeObserver).
    var chart = new window.uPlot(sparkOptions(kpi, box.clientWidth || 160), data, box);
    state.sparks.set(kpi.key, { chart: chart, sig: sig });
  }

  var resizeObserver = typeof ResizeObserver === "function"
    ? new ResizeObserver(function (entries) {
      entries.forEach(function (entry) {
        var el = entry.target;
        var width = Math.floor(entry.contentRect.width);
        if (width <= 0) return;
        if (el.classList.contains("sparkline")) {
          var spark = state.sparks.get(el.getAttribute("data-for"));
          if (spark && Math.abs(spark.chart.width - width) > 1) spark.chart.setSize({ width: width, height: 44 });
        } else if (el.id === "detail-chart" && state.detail && state.detail.chart) {
          var chart = state.detail.chart;
          if (Math.abs(chart.width - width) > 1) chart.setSize({ width: width, height: chartHeight() });
        }
      });
    })
    : null;

  // ---------------------------------------------------------------- scorecard

  function ensureSection(perspective) {
    var existing = state.sections.get(perspective);
    if (existing) return existing;
    var meta = PERSPECTIVES.filter(function (p) { return p.key === perspective; })[0] ||
      { key: perspective, label: humanize(perspective), question: "" };
    var headingId = "perspective-" + perspective;
    var score = h("span", { className: "perspective-score", "aria-label": t("score") }, "—");
    var grid = h("div", { className: "kpi-grid" });
    var section = h(
      "section",
      { className: "perspective p-" + perspective, "data-perspective": perspective, "aria-labelledby": headingId },
      h("header", { className: "perspective-head" },
        h("h2", { id: headingId }, meta.label),
        score,
        meta.question ? h("p", { className: "perspective-question" }, meta.question) : null),
      grid
    );
    document.getElementById("scorecard").appendChild(section);
    var entry = { section: section, grid: grid, score: score };
    state.sections.set(perspective, entry);
    return entry;
  }

  function createCard(key) {
    var tpl = document.getElementById("kpi-card-template");
    var card = tpl.content.firstElementChild.cloneNode(true);
    card.setAttribute("data-kpi", key);
    card.querySelector(".sparkline").setAttribute("data-for", key);
    card.querySelector(".kpi-link").setAttribute("href", detailHref(key));
    if (resizeObserver) resizeObserver.observe(card.querySelector(".sparkline"));
    state.cards.set(key, card);
    return card;
  }

  function linkList(label, keys) {
    var frag = document.createDocumentFragment();
    frag.appendChild(h("span", { className: "label" }, label + ": "));
    keys.forEach(function (k, i) {
      if (i) frag.appendChild(document.createTextNode(", "));
      var other = state.kpis.get(k);
      frag.appendChild(h("a", { href: detailHref(k), title: other ? other.name : null }, k));
    });
    return frag;
  }

  // A window still filling: its value covers only part of the window (no alerts yet,
  // unless the KPI asks for them).
  function partialNote(kpi) {
    if (!kpi.partial || !isNum(kpi.coverage)) return "";
    return " · " + t("partial ({n} % of window)", { n: Math.floor(kpi.coverage * 100) });
  }

  function updateCard(card, kpi, leadsMap) {
    var status = STATUS[kpi.status] ? kpi.status : "no_data";
    card.setAttribute("data-status", status);
    card.className = "kpi-card status-" + status;
    var alerts = state.alertsByKpi.get(kpi.key) || [];
    card.toggleAttribute("data-alerting", alerts.length > 0);

    var link = card.querySelector(".kpi-link");
    link.textContent = kpi.name || kpi.key;
    link.title = kpi.objective || "";

    card.querySelector(".status-icon").textContent = STATUS[status].icon;
    card.toggleAttribute("data-expired", kpi.expired === true);
    card.querySelector(".status-text").textContent =
      STATUS[status].label + (alerts.length ? " · " + t("alert") : "") + (kpi.expired ? " · " + t("expired") : "") +
      partialNote(kpi);
    card.toggleAttribute("data-partial", !!kpi.partial);

    var value = card.querySelector(".value");
    value.textContent = isNum(kpi.value) ? formatValue(kpi.value, kpi.unit) : t("No data");
    var ratio = isNum(kpi.numerator) && isNum(kpi.denominator)
      ? " (" + plain(kpi.numerator) + " / " + plain(kpi.denominator) + ")" : "";
    value.title = kpi.as_of ? t("as of {time}", { time: formatTime(kpi.as_of) }) + ratio : ratio.trim();

    var band = kpi.direction === "target_band";
    card.querySelector(".f-minimum").previousElementSibling.textContent = band ? t("Tolerance") : t("Minimum");
    card.querySelector(".f-minimum").textContent = band
      ? "± " + formatThreshold(kpi.minimum, kpi.unit) : formatThreshold(kpi.minimum, kpi.unit);
    card.querySelector(".f-target").textContent = formatThreshold(kpi.target, kpi.unit);
    card.querySelector(".f-score").textContent = formatScore(kpi.score);

    var expiry = expiryInfo(kpi.expires_on, kpi);
    var exp = card.querySelector(".f-expiry");
    exp.textContent = expiry.date || expiry.text;
    if (expiry.note) exp.appendChild(h("span", { className: "expiry-note" }, expiry.note));
    exp.className = "f-expiry " + expiry.cls;
    exp.title = expiry.title || "";

    var owners = card.querySelector(".kpi-owners");
    owners.textContent = "";
    var list = Array.isArray(kpi.owners) ? kpi.owners : [];
    owners.appendChild(h("span", { className: "label" }, (list.length > 1 ? t("Owners") : t("Owner")) + ": "));
    owners.appendChild(document.createTextNode(
      list.length ? list.map(function (o) { return o && (o.name || o.email) || "?"; }).join(", ") : "—"
    ));

    var links = card.querySelector(".kpi-links");
    links.textContent = "";
    var ledBy = Array.isArray(kpi.leading_indicators) ? kpi.leading_indicators : [];
    var leads = leadsMap.get(kpi.key) || [];
    if (ledBy.length) links.appendChild(linkList(t("led by"), ledBy));
    if (ledBy.length && leads.length) links.appendChild(document.createTextNode(" · "));
    if (leads.length) links.appendChild(linkList(t("leads"), leads));
    links.hidden = !ledBy.length && !leads.length;

    var warning = card.querySelector(".kpi-warning");
    var early = Array.isArray(kpi.early_warning) ? kpi.early_warning : [];
    warning.hidden = !early.length;
    warning.textContent = "";
    if (early.length) {
      warning.appendChild(h("span", { className: "badge warn" }, "⚠ " + t("Early warning")));
      warning.appendChild(document.createTextNode(
        " " + t("leading indicator in breach: {keys}", { keys: early.join(", ") })
      ));
    }
    updateSparkline(card, kpi);
  }

  function renderKpis(payload) {
    var list = Array.isArray(payload) ? payload : payload && Array.isArray(payload.kpis) ? payload.kpis : null;
    if (!list) throw new Error(t("unexpected answer"));
    state.kpis = new Map();
    list.forEach(function (k) { if (k && k.key) state.kpis.set(k.key, k); });

    var leadsMap = new Map(); // leading key -> lagging keys it leads
    list.forEach(function (k) {
      (k.leading_indicators || []).forEach(function (lead) {
        if (!leadsMap.has(lead)) leadsMap.set(lead, []);
        leadsMap.get(lead).push(k.key);
      });
    });

    PERSPECTIVES.forEach(function (p) { ensureSection(p.key); });
    var position = new Map();
    list.forEach(function (kpi) {
      if (!kpi || !kpi.key) return;
      var section = ensureSection(kpi.perspective || "other");
      var card = state.cards.get(kpi.key) || createCard(kpi.key);
      var index = position.get(section) || 0;
      if (section.grid.children[index] !== card) section.grid.insertBefore(card, section.grid.children[index] || null);
      position.set(section, index + 1);
      updateCard(card, kpi, leadsMap);
    });
    // KPIs retired from the catalog disappear.
    state.cards.forEach(function (card, key) {
      if (!state.kpis.has(key)) {
        var spark = state.sparks.get(key);
        if (spark) spark.chart.destroy();
        state.sparks.delete(key);
        if (resizeObserver) resizeObserver.unobserve(card.querySelector(".sparkline"));
        card.remove();
        state.cards.delete(key);
      }
    });
    state.sections.forEach(function (entry) {
      var empty = entry.grid.children.length === 0;
      entry.grid.classList.toggle("is-empty", empty);
      entry.grid.setAttribute("data-empty-text", empty ? t("No KPI in this perspective.") : "");
    });
  }

  function setTile(tile, score, note) {
    tile.querySelector(".tile-score").textContent = formatScore(score);
    var fill = tile.querySelector(".tile-meter-fill");
    fill.style.width = (isNum(score) ? Math.max(0, Math.min(100, score)) : 0) + "%";
    tile.setAttribute("data-band", !isNum(score) ? "none" : score >= 80 ? "good" : score >= 40 ? "fair" : "poor");
    tile.querySelector(".tile-note").textContent = note;
  }

  function renderScorecard(card) {
    if (!card || typeof card !== "object") throw new Error(t("unexpected answer"));
    state.scorecard = card;
    var tiles = document.getElementById("score-tiles");
    var perspectives = Array.isArray(card.perspectives) ? card.perspectives : [];
    var totalKpis = 0;
    var scoredKpis = 0;
    var order = PERSPECTIVES.map(function (p) { return p.key; });
    perspectives.slice().sort(function (a, b) {
      return order.indexOf(a.perspective) - order.indexOf(b.perspective);
    }).forEach(function (p) {
      var key = p.perspective;
      var tile = tiles.querySelector('[data-perspective="' + CSS.escape(key) + '"]');
      if (!tile) {
        var meta = PERSPECTIVES.filter(function (x) { return x.key === key; })[0];
        tile = h("a", { className: "score-tile", "data-perspective": key, href: "#perspective-" + key },
          h("span", { className: "tile-label" }, meta ? meta.label : humanize(key)),
          h("span", { className: "tile-score" }, "—"),
          h("span", { className: "tile-meter", "aria-hidden": "true" }, h("span", { className: "tile-meter-fill" })),
          h("span", { className: "tile-note" }));
        tiles.appendChild(tile);
      }
      var keys = Array.isArray(p.kpis) ? p.kpis : [];
      var scored = Array.isArray(p.scored) ? p.scored.length
        : keys.filter(function (k) { var x = state.kpis.get(k); return x && isNum(x.score); }).length;
      totalKpis += keys.length;
      scoredKpis += scored;
      setTile(tile, p.score, t("{n} of {total} KPIs scored", { n: scored, total: keys.length }));
      var section = state.sections.get(key);
      if (section) {
        section.score.textContent = isNum(p.score) ? t("Score {n}", { n: formatScore(p.score) }) : t("No score yet");
      }
    });
    setTile(tiles.querySelector('[data-perspective="overall"]'), card.overall,
      t("{n} of {total} KPIs scored", { n: scoredKpis, total: totalKpis }));
  }

  // ---------------------------------------------------------------- alerts

  function alertList(payload) {
    var list = Array.isArray(payload) ? payload : payload && Array.isArray(payload.alerts) ? payload.alerts : null;
    if (!list) throw new Error(t("unexpected answer"));
    return list.filter(function (a) { return a && a.kpi_key && (!a.state || a.state === "firing"); });
  }

  function alertId(a) {
    return String(a.id !== undefined && a.id !== null ? a.id : a.kpi_key + ":" + a.condition);
  }

  function indexAlerts(payload) {
    var alerts = alertList(payload).sort(function (a, b) {
      var ra = (CONDITIONS[a.condition] || { rank: 9 }).rank;
      var rb = (CONDITIONS[b.condition] || { rank: 9 }).rank;
      if (ra !== rb) return ra - rb;
      return String(b.fired_at || b.started_at || "").localeCompare(String(a.fired_at || a.started_at || ""));
    });
    state.alertsByKpi = new Map();
    alerts.forEach(function (a) {
      if (!state.alertsByKpi.has(a.kpi_key)) state.alertsByKpi.set(a.kpi_key, []);
      state.alertsByKpi.get(a.kpi_key).push(a);
    });
    return alerts;
  }

  function renderAlertItems(alerts) {
    var ul = document.getElementById("alert-list");
    var seen = new Set();
    alerts.forEach(function (a, index) {
      var id = alertId(a);
      seen.add(id);
      var li = state.alertItems.get(id);
      if (!li) {
        li = h("li", { className: "alert-item", "data-alert-id": id });
        state.alertItems.set(id, li);
      }
      fillAlert(li, a);
      if (ul.children[index] !== li) ul.insertBefore(li, ul.children[index] || null);
    });
    state.alertItems.forEach(function (li, id) {
      if (!seen.has(id)) {
        li.remove();
        state.alertItems.delete(id);
      }
    });
    document.getElementById("alerts-empty").hidden = alerts.length > 0;
    document.getElementById("alerts-count").textContent = alerts.length ? "(" + alerts.length + ")" : "";
  }

  function fillAlert(li, a) {
    var condition = CONDITIONS[a.condition] ? a.condition : "other";
    li.setAttribute("data-alert-kpi", a.kpi_key);
    li.setAttribute("data-alert-condition", a.condition || "");
    li.className = "alert-item c-" + condition;
    var kpi = state.kpis.get(a.kpi_key);
    var since = a.fired_at || a.started_at;
    var sinceEl = since
      ? h("time", { datetime: since, title: formatTime(since) }, t("since {ago}", { ago: ago(since) }))
      : null;
    li.textContent = "";
    li.appendChild(h("span", { className: "alert-condition" },
      (CONDITIONS[a.condition] || { label: humanize(a.condition || t("alert")) }).label));
    li.appendChild(h("a", { className: "alert-kpi", href: detailHref(a.kpi_key) }, kpi ? kpi.name : a.kpi_key));
    li.appendChild(h("span", { className: "alert-meta" },
      isNum(a.value) ? t("value {value}", { value: formatValue(a.value, kpi ? kpi.unit : "") }) + " " : "",
      sinceEl,
      a.acked_at ? " · " + t("acknowledged") + (a.acked_by ? " " + t("by {who}", { who: a.acked_by }) : "") : ""));
    // Owners and editors of the KPI may act; the API refuses others with a message.
    var actions = h("span", { className: "alert-actions" });
    if (!a.acked_at) {
      actions.appendChild(h("button", { type: "button", className: "alert-action", "data-action": "ack" }, t("Acknowledge")));
    }
    actions.appendChild(h("button", { type: "button", className: "alert-action", "data-action": "silence" }, t("Silence 1 h")));
    li.appendChild(actions);
  }

  function onAlertAction(event) {
    var button = event.target.closest ? event.target.closest("button[data-action]") : null;
    if (!button) return;
    var li = button.closest("li");
    var id = li.getAttribute("data-alert-id");
    var kpi = li.getAttribute("data-alert-kpi");
    var request;
    if (button.getAttribute("data-action") === "ack") {
      var note = window.prompt(t("Acknowledge this alert. Note (optional):"), "");
      if (note === null) return;
      request = fetchJson(alertsBase + "/v1/alerts/" + encodeURIComponent(id) + "/ack", {
        method: "POST", body: { note: note },
      });
    } else {
      var reason = window.prompt(t("Silence {kpi} for 1 hour. Why?", { kpi: kpi }), "");
      if (!reason) return;
      request = fetchJson(alertsBase + "/v1/silences", {
        method: "POST", body: { kpi_key: kpi, duration_s: 3600, reason: reason },
      });
    }
    button.disabled = true;
    request
      .then(function () {
        setError(t("alert action"), null);
        return refresh();
      })
      .catch(function (err) {
        if (!(err instanceof SignedOut)) setError(t("alert action"), err && err.message ? err.message : String(err));
      })
      .finally(function () { button.disabled = false; });
  }

  // ---------------------------------------------------------------- detail view

  function chartHeight() {
    return window.innerWidth < 600 ? 200 : 260;
  }

  function routeKey() {
    var m = /^#\/kpi\/([^/?#]+)/.exec(location.hash || "");
    if (!m) return null;
    try {
      return decodeURIComponent(m[1]);
    } catch (e) {
      return null;
    }
  }

  function route() {
    var key = routeKey();
    if (key) openDetail(key);
    else closeDetail();
  }

  function openDetail(key) {
    var dialog = document.getElementById("detail");
    if (state.detail && state.detail.key === key) {
      if (!dialog.open) dialog.showModal();
      return;
    }
    destroyDetailChart();
    var kpi = state.kpis.get(key);
    var windowS = kpi ? durationSeconds(kpi.window) : null;
    state.detail = { key: key, chart: null, rangeS: windowS || 7 * 86400, windowS: windowS };
    document.getElementById("detail-title").textContent = kpi ? kpi.name : key;
    document.getElementById("detail-kicker").textContent = "";
    var body = document.getElementById("detail-body");
    body.textContent = "";
    body.appendChild(h("p", { className: "muted" }, t("Loading…")));
    if (!dialog.open) dialog.showModal();
    loadDetail();
  }

  function closeDetail() {
    var dialog = document.getElementById("detail");
    destroyDetailChart();
    state.detail = null;
    if (dialog.open) dialog.close();
  }

  function destroyDetailChart() {
    if (state.detail && state.detail.chart) {
      state.detail.chart.destroy();
      state.detail.chart = null;
    }
    var el = document.getElementById("detail-chart");
    if (el && resizeObserver) resizeObserver.unobserve(el);
  }

  function historyUrl(key, rangeS) {
    // At most ~240 points (the API allows 1000). The range is a whole number of steps
    // so that the last point is "now" and the newest value always shows.
    var step = Math.max(60, Math.ceil(rangeS / 240));
    var to = new Date();
    var from = new Date(to.getTime() - Math.ceil(rangeS / step) * step * 1000);
    return kpiUrl(key) + "/history?from=" + encodeURIComponent(from.toISOString()) +
      "&to=" + encodeURIComponent(to.toISOString()) + "&step=" + step;
  }

  function loadDetail() {
    var detail = state.detail;
    if (!detail) return Promise.resolve();
    var key = detail.key;
    return Promise.allSettled([fetchJson(kpiUrl(key)), fetchJson(historyUrl(key, detail.rangeS))])
      .then(function (results) {
        if (state.detail !== detail) return; // closed or switched meanwhile
        var info = results[0];
        var history = results[1];
        if (info.status === "rejected") {
          setError(t("KPI detail"), info.reason.message);
          if (!detail.rendered) {
            var body = document.getElementById("detail-body");
            body.textContent = "";
            body.appendChild(h("p", { className: "error-inline", role: "alert" },
              t("Could not load {key} ({reason}).", { key: key, reason: info.reason.message })));
          }
          return;
        }
        setError(t("KPI detail"), history.status === "rejected" ? t("history") + ": " + history.reason.message : null);
        renderDetail(detail, info.value, history.status === "fulfilled" ? history.value : null);
      })
      .catch(function (err) {
        setError(t("KPI detail"), err && err.message ? err.message : String(err));
      });
  }

  function fact(label, value, cls) {
    return h("div", { className: cls || null }, h("dt", null, label), h("dd", null, value === null || value === undefined || value === "" ? "—" : value));
  }

  function renderDetail(detail, info, history) {
    var kpi = info && info.kpi ? info.kpi : state.kpis.get(detail.key) || { key: detail.key };
    var def = info && info.definition ? info.definition : {};
    var unit = kpi.unit || def.unit;
    if (!detail.windowS) {
      detail.windowS = durationSeconds(kpi.window || def.window);
      if (detail.windowS && !detail.rangeChosen) detail.rangeS = detail.windowS;
    }
    var status = STATUS[kpi.status] ? kpi.status : "no_data";
    document.getElementById("detail-title").textContent = kpi.name || def.name || detail.key;
    document.getElementById("detail-kicker").textContent = [
      perspectiveLabel(kpi.perspective || def.perspective), translatedKey(kpi.stage || def.stage),
      humanize(kpi.department || def.department), translatedKey(kpi.indicator || def.indicator),
    ].filter(Boolean).join(" · ");

    var body = document.getElementById("detail-body");
    if (!detail.rendered) {
      body.textContent = "";
      detail.els = {
        summary: h("div", { className: "detail-summary" }),
        rangeSelect: h("select", { id: "detail-range", "aria-label": t("History range") }),
        chartBox: h("div", { id: "detail-chart", className: "detail-chart" }),
        chartNote: h("p", { className: "muted chart-note" }),
        historyCsv: h("a", { className: "tool-button", id: "history-csv", download: true }, t("Download CSV")),
        periods: h("div", { className: "table-wrap" }),
        leadLag: h("div", { className: "table-wrap" }),
        facts: h("dl", { className: "detail-facts" }),
      };
      var e = detail.els;
      rangeOptions(detail).forEach(function (o) {
        e.rangeSelect.appendChild(h("option", { value: String(o.s), selected: o.s === detail.rangeS }, o.label));
      });
      e.rangeSelect.addEventListener("change", function () {
        detail.rangeS = parseInt(e.rangeSelect.value, 10);
        detail.rangeChosen = true;
        loadDetail();
      });
      body.appendChild(e.summary);
      body.appendChild(h("section", { className: "detail-section", "aria-labelledby": "history-heading" },
        h("div", { className: "section-head" },
          h("h3", { id: "history-heading" }, t("History")),
          h("label", { className: "range-label" }, t("Range") + " ", e.rangeSelect),
          e.historyCsv),
        e.chartBox, e.chartNote));
      body.appendChild(h("section", { className: "detail-section", "aria-labelledby": "periods-heading" },
        h("h3", { id: "periods-heading" }, t("Period analysis") + (def.review_period ? " (" + t("per {period}", { period: translatedKey(def.review_period) }) + ")" : "")),
        e.periods));
      body.appendChild(h("section", { className: "detail-section", "aria-labelledby": "leadlag-heading" },
        h("h3", { id: "leadlag-heading" }, t("Leading and lagging indicators")), e.leadLag));
      body.appendChild(h("section", { className: "detail-section", "aria-labelledby": "facts-heading" },
        h("h3", { id: "facts-heading" }, t("Definition")), e.facts));
      // Reported KPIs (values people enter): the entry form, from reported.js.
      var reported = window.KpiPulseReported;
      if (reported && reported.isReported(def)) body.appendChild(reported.section(detail.key, loadDetail, t));
      detail.rendered = true;
      if (resizeObserver) resizeObserver.observe(e.chartBox);
    }
    var els = detail.els;

    // Summary: value, status, score, thresholds.
    els.summary.textContent = "";
    els.summary.className = "detail-summary status-" + status;
    els.summary.setAttribute("data-status", status);
    var band = def.band && isNum(def.band.low) && isNum(def.band.high)
      ? formatValue(def.band.low, unit) + " – " + formatValue(def.band.high, unit) : null;
    els.summary.appendChild(h("div", { className: "big-value" },
      h("span", { className: "value" }, isNum(kpi.value) ? formatValue(kpi.value, unit) : t("No data")),
      h("span", { className: "status-badge" },
        h("span", { className: "status-icon", "aria-hidden": "true" }, STATUS[status].icon),
        h("span", { className: "status-text" }, STATUS[status].label + partialNote(kpi)))));
    var summaryFacts = h("dl", { className: "kpi-facts" },
      fact(kpi.direction === "target_band" ? t("Tolerance") : t("Minimum"), formatValue(kpi.minimum, unit)),
      fact(t("Target"), formatValue(kpi.target, unit)),
      band ? fact(t("Band"), band) : null,
      fact(t("Score"), formatScore(kpi.score)),
      fact(t("As of"), kpi.as_of ? formatTime(kpi.as_of) : "—"));
    els.summary.appendChild(summaryFacts);
    var early = Array.isArray(kpi.early_warning) ? kpi.early_warning : [];
    if (early.length) {
      els.summary.appendChild(h("p", { className: "kpi-warning" },
        h("span", { className: "badge warn" }, "⚠ " + t("Early warning")),
        " " + t("leading indicator in breach: {keys}", { keys: early.join(", ") })));
    }
    var firing = state.alertsByKpi.get(detail.key) || [];
    if (firing.length) {
      els.summary.appendChild(h("p", { className: "detail-alerts" },
        h("span", { className: "badge crit" }, t("Alert")),
        " " + firing.map(function (a) {
          return (CONDITIONS[a.condition] || { label: humanize(a.condition) }).label;
        }).join(", ")));
    }

    // The same range as the chart, as a spreadsheet.
    els.historyCsv.setAttribute("href", historyUrl(detail.key, detail.rangeS)
      .replace("/history?", "/history.csv?") + (I18N.locale ? "&lang=" + I18N.locale : ""));
    renderHistoryChart(detail, kpi, history);
    renderPeriods(els.periods, info && info.periods, unit);
    renderLeadLag(els.leadLag, info && info.lead_lag, kpi);
    renderFacts(els.facts, kpi, def);
  }

  function rangeOptions(detail) {
    var options = [
      { s: 86400, label: t("24 hours") },
      { s: 7 * 86400, label: t("7 days") },
      { s: 30 * 86400, label: t("30 days") },
      { s: 90 * 86400, label: t("90 days") },
      { s: 365 * 86400, label: t("365 days") },
    ];
    if (detail.windowS && !options.some(function (o) { return o.s === detail.windowS; })) {
      options.unshift({ s: detail.windowS, label: t("Window") });
    }
    options.forEach(function (o) { if (o.s === detail.windowS) o.label += " (" + t("window") + ")"; });
    return options;
  }

  function renderHistoryChart(detail, kpi, history) {
    var box = detail.els.chartBox;
    var note = detail.els.chartNote;
    if (!history) {
      note.textContent = t("History unavailable right now.");
      return;
    }
    var s = seriesFrom(history.points);
    var lines = thresholdLines(kpi, s[0]);
    var data = [s[0], s[1], lines[0], lines[1]];
    var n = countValues(s[1]);
    note.textContent = n ? "" : t("No value in this range yet.");
    if (!chartsAvailable()) {
      note.textContent = t("Charts unavailable (the charting library did not load).");
      return;
    }
    // A lone value draws no line: show the points while there are few of them.
    var sig = kpi.status + (n <= 3 ? ":sparse" : "");
    if (detail.chart && detail.chartSig === sig) {
      detail.chart.setData(data);
      return;
    }
    if (detail.chart) detail.chart.destroy();
    var colour = STATUS_COLOURS[kpi.status] || STATUS_COLOURS.no_data;
    var unit = kpi.unit;
    detail.chart = new window.uPlot({
      width: Math.max(240, box.clientWidth || 600),
      height: chartHeight(),
      scales: { x: { time: true } },
      legend: { show: true, live: true },
      cursor: { drag: { x: false, y: false } },
      axes: [
        { stroke: "#4b5563", grid: { stroke: "#e5e7eb" }, ticks: { stroke: "#e5e7eb" } },
        {
          stroke: "#4b5563", size: 70, grid: { stroke: "#e5e7eb" }, ticks: { stroke: "#e5e7eb" },
          // Long units ("complaints") go in the axis label, not on every tick.
          label: formatThreshold(1, unit) === plain(1) && unit && unit !== "count" ? unit : null,
          labelSize: 20,
          values: function (u, splits) { return splits.map(function (v) { return formatThreshold(v, unit); }); },
        },
      ],
      series: [
        { label: t("Time") },
        { label: t("Value"), stroke: colour, width: 2, fill: colour + "1a", spanGaps: false,
          points: n <= 3 ? { show: true, size: 8, fill: colour } : {},
          value: function (u, v) { return formatValue(v, unit); } },
        { label: kpi.direction === "target_band" ? "—" : t("Minimum"), stroke: STATUS_COLOURS.breach, width: 1, dash: [6, 4],
          points: { show: false }, show: kpi.direction !== "target_band",
          value: function (u, v) { return formatValue(v, unit); } },
        { label: t("Target"), stroke: STATUS_COLOURS.on_target, width: 1, dash: [6, 4], points: { show: false },
          value: function (u, v) { return formatValue(v, unit); } },
      ],
    }, data, box);
    detail.chartSig = sig;
  }

  function renderPeriods(container, periods, unit) {
    container.textContent = "";
    var rows = Array.isArray(periods) ? periods : [];
    if (!rows.length) {
      container.appendChild(h("p", { className: "muted" }, t("No period analysis yet.")));
      return;
    }
    var tbody = h("tbody");
    rows.slice().reverse().forEach(function (p) {
      var partial = isNum(p.elapsed) && p.elapsed < 1;
      var changePct = isNum(p.change_pct) ? p.change_pct
        : isNum(p.change_ratio) ? p.change_ratio * 100 : null;
      var gapCls = isNum(p.gap) ? (p.gap >= 0 ? "pos" : "neg") : "";
      tbody.appendChild(h("tr", null,
        h("th", { scope: "row" }, periodLabel(p) + (partial ? " (" + t("so far") + ")" : "")),
        h("td", null, formatValue(p.actual, unit)),
        h("td", null, formatValue(p.expected, unit)),
        h("td", { className: gapCls }, formatDelta(p.gap, unit)),
        h("td", null, formatDelta(p.change, unit) +
          (isNum(changePct) ? " (" + (changePct > 0 ? "+" : changePct < 0 ? "−" : "±") + numberFormat(1).format(Math.abs(changePct)) + "%)" : ""))));
    });
    container.appendChild(h("table", { className: "data-table" },
      h("caption", { className: "visually-hidden" }, t("Actual versus expected per review period, newest first; a positive gap is better than expected")),
      h("thead", null, h("tr", null,
        h("th", { scope: "col" }, t("Period")),
        h("th", { scope: "col" }, t("Actual")),
        h("th", { scope: "col" }, t("Expected")),
        h("th", { scope: "col" }, t("Gap")),
        h("th", { scope: "col" }, t("Change")))),
      tbody));
  }

  function periodLabel(p) {
    var start = p.period_start ? new Date(p.period_start) : null;
    var end = p.period_end ? new Date(p.period_end) : null;
    if (!start || isNaN(start.getTime())) return "—";
    var opts = { month: "short", day: "numeric", timeZone: TIME_ZONE };
    var text = start.toLocaleDateString(LOCALE, opts);
    if (end && !isNaN(end.getTime())) {
      var last = new Date(end.getTime() - 1000).toLocaleDateString(LOCALE, opts);
      if (last !== text) text += " – " + last;
    }
    return text;
  }

  function renderLeadLag(container, rows, kpi) {
    container.textContent = "";
    var list = Array.isArray(rows) ? rows : [];
    if (!list.length) {
      container.appendChild(h("p", { className: "muted" }, t("No leading or lagging indicator is linked to this KPI.")));
      return;
    }
    var tbody = h("tbody");
    list.forEach(function (r) {
      var enough = r.enough_points !== false && isNum(r.r);
      var lag = { n: r.best_lag, period: translatedKey(r.period || "period") };
      tbody.appendChild(h("tr", null,
        h("td", null, linkOrText(r.leading, kpi.key)),
        h("td", null, linkOrText(r.lagging, kpi.key)),
        // Lags count periods of the link's common period (the coarser review period).
        h("td", null, enough && isNum(r.best_lag) ? (r.best_lag === 1 ? t("{n} {period}", lag) : t("{n} {period}s", lag)) : "—"),
        h("td", null, enough ? numberFormat(2, 2).format(r.r) : t("not enough data")),
        h("td", null, isNum(r.points) ? String(r.points) : "—")));
    });
    container.appendChild(h("table", { className: "data-table" },
      h("thead", null, h("tr", null,
        h("th", { scope: "col" }, t("Leading")),
        h("th", { scope: "col" }, t("Lagging")),
        h("th", { scope: "col" }, t("Best lag")),
        h("th", { scope: "col" }, t("Correlation r")),
        h("th", { scope: "col" }, t("Points")))),
      tbody));
  }

  function linkOrText(key, self) {
    if (!key) return "—";
    if (key === self) return h("strong", null, key);
    return h("a", { href: detailHref(key) }, key);
  }

  function renderFacts(dl, kpi, def) {
    dl.textContent = "";
    var owners = (kpi.owners || def.owners || []).map(function (o) {
      return o.email ? h("a", { href: "mailto:" + o.email }, o.name || o.email) : document.createTextNode(o.name || "?");
    });
    var ownersEl = h("span");
    owners.forEach(function (el, i) {
      if (i) ownersEl.appendChild(document.createTextNode(", "));
      ownersEl.appendChild(el);
    });
    var expiry = expiryInfo(kpi.expires_on || def.expires_on, kpi);
    var cost = def.tracking_cost;
    var scope = def.scope ? JSON.stringify(def.scope) : null;
    var direction = { higher_is_better: t("Higher is better"), lower_is_better: t("Lower is better"), target_band: t("Within a band") }[kpi.direction || def.direction];
    var indicator = kpi.indicator || def.indicator;
    var review = kpi.review_period || def.review_period;
    [
      [t("Objective"), kpi.objective || def.objective],
      [t("Owners"), owners.length ? ownersEl : null],
      [t("Direction"), direction],
      [t("Baseline"), isNum(def.baseline) ? formatValue(def.baseline, kpi.unit) : null],
      [t("Weight"), isNum(kpi.weight) ? plain(kpi.weight) : null],
      [t("Window"), kpi.window || def.window],
      [t("Update every"), kpi.update_every || def.update_every],
      [t("Review period"), review ? translatedKey(review) : null],
      [t("Expires"), h("span", { className: expiry.cls }, expiry.text)],
      [t("Indicator"), indicator ? translatedKey(indicator) : null],
      [t("Scope"), scope],
      [t("Tracking cost"), cost && isNum(cost.amount) ? formatValue(cost.amount, cost.currency) + (cost.per ? " / " + translatedKey(cost.per) : "") : null],
      [t("Data collection"), def.data_collection],
      [t("Viewers"), Array.isArray(def.viewers) ? def.viewers.join(", ") : null],
    ].forEach(function (pair) {
      dl.appendChild(fact(pair[0], pair[1]));
    });
  }

  // ---------------------------------------------------------------- refresh loop

  function settle(result, source, render) {
    if (result.status === "fulfilled") {
      try {
        render(result.value);
        setError(source, null);
        return true;
      } catch (err) {
        setError(source, err && err.message ? err.message : String(err));
        return false;
      }
    }
    setError(source, result.reason && result.reason.message ? result.reason.message : t("failed"));
    return false;
  }

  // ---------------------------------------------------------------- sign-in

  function show(id, visible) {
    document.getElementById(id).hidden = !visible;
  }

  function showSignIn(message) {
    clearTimeout(state.timer);
    session.csrf = null;
    show("main", false);
    show("whoami", false);
    show("password-change", false);
    show("signin", true);
    document.getElementById("updated").textContent = t("Signed out");
    document.getElementById("signin-error").textContent = message || "";
    document.getElementById("signin-email").focus();
  }

  function signedIn(me) {
    session.csrf = me.csrf_token;
    session.email = me.email;
    show("signin", false);
    document.getElementById("whoami-text").textContent = me.email + " · " + me.role;
    show("whoami", true);
    if (me.must_change_password) {
      show("main", false);
      show("password-change", true);
      document.getElementById("password-current").focus();
      return Promise.resolve();
    }
    show("password-change", false);
    show("main", true);
    return refresh().then(route);
  }

  function start() {
    return fetchJson("/v1/session", { quiet401: true })
      .then(function (me) {
        if (!me || !me.signed_in) {
          showSignIn("");
          return undefined;
        }
        return signedIn(me);
      })
      .catch(function (err) {
        if (err && err.status === 401) showSignIn("");
        else if (!(err instanceof SignedOut)) setError(t("page"), err && err.message ? err.message : String(err));
      });
  }

  function onSignIn(event) {
    event.preventDefault();
    var email = document.getElementById("signin-email").value;
    var password = document.getElementById("signin-password").value;
    var error = document.getElementById("signin-error");
    error.textContent = "";
    fetchJson("/v1/session", { method: "POST", body: { email: email, password: password }, quiet401: true })
      .then(function (me) {
        document.getElementById("signin-password").value = "";
        return signedIn(me);
      })
      .catch(function (err) {
        error.textContent = err && err.message ? err.message : String(err);
      });
  }

  function onPasswordChange(event) {
    event.preventDefault();
    var error = document.getElementById("password-error");
    error.textContent = "";
    fetchJson("/v1/session/password", {
      method: "POST",
      body: {
        current_password: document.getElementById("password-current").value,
        new_password: document.getElementById("password-new").value,
      },
    })
      .then(start)
      .catch(function (err) {
        if (!(err instanceof SignedOut)) error.textContent = err && err.message ? err.message : String(err);
      });
  }

  function onSignOut() {
    fetchJson("/v1/session", { method: "DELETE", quiet401: true })
      .catch(function () { return null; })
      .then(function () { location.reload(); });
  }

  function refresh() {
    if (state.inFlight) return Promise.resolve();
    if (!session.csrf) return Promise.resolve();
    if (document.hidden && state.lastUpdate) {
      // A background tab does not poll; it refreshes as soon as it is shown again.
      clearTimeout(state.timer);
      state.timer = setTimeout(refresh, REFRESH_MS);
      return Promise.resolve();
    }
    state.inFlight = true;
    clearTimeout(state.timer);
    return Promise.allSettled([
      fetchJson("/v1/kpis"),
      fetchJson("/v1/scorecard"),
      fetchJson(alertsBase + "/v1/alerts?state=firing"),
    ])
      .then(function (results) {
        // Alerts are indexed first (the KPI cards show whether one fires for them) and
        // listed after the KPIs (the list shows KPI names and units).
        var alerts = null;
        var okAlerts = settle(results[2], t("alerts"), function (payload) { alerts = indexAlerts(payload); });
        document.getElementById("alerts-empty").textContent = okAlerts || state.alertItems.size
          ? t("No alert is firing.") : t("Alerts are unavailable right now.");
        var okKpis = settle(results[0], t("KPIs"), renderKpis);
        if (alerts) renderAlertItems(alerts);
        settle(results[1], t("scorecard"), renderScorecard);
        renderFilterOptions();
        applyFilter();
        if (okKpis) {
          state.lastUpdate = new Date();
          document.getElementById("updated").textContent =
            t("Updated {time} · refreshes every {n} s",
              { time: state.lastUpdate.toLocaleTimeString(LOCALE, { timeZone: TIME_ZONE }), n: REFRESH_MS / 1000 });
        }
        if (state.detail) return loadDetail();
        return undefined;
      })
      .catch(function (err) {
        if (!(err instanceof SignedOut)) setError(t("page"), err && err.message ? err.message : String(err));
      })
      .finally(function () {
        state.inFlight = false;
        if (session.csrf) state.timer = setTimeout(refresh, REFRESH_MS);
      });
  }

  function init() {
    if (!chartsAvailable()) setError(t("charts"), t("the charting library did not load"));
    PERSPECTIVES.forEach(function (p) { ensureSection(p.key); });

    document.getElementById("filter-department").addEventListener("change", function (event) {
      setFilter(event.target.value, state.filter.owner);
    });
    document.getElementById("filter-owner").addEventListener("change", function (event) {
      setFilter(state.filter.department, event.target.value);
    });
    document.getElementById("my-kpis").addEventListener("click", function () {
      var user = currentUser();
      setFilter(state.filter.department, state.filter.owner === user ? "" : user);
    });
    document.getElementById("print-report").addEventListener("click", function () {
      applyFilter();
      window.print();
    });
    renderFilterOptions();
    applyFilter();

    var dialog = document.getElementById("detail");
    document.getElementById("detail-close").addEventListener("click", function () { dialog.close(); });
    dialog.addEventListener("click", function (event) {
      if (event.target === dialog) dialog.close(); // a click on the backdrop
    });
    dialog.addEventListener("close", function () {
      destroyDetailChart();
      state.detail = null;
      setError(t("KPI detail"), null);
      if (routeKey()) history.replaceState(null, "", location.pathname + location.search + "#/");
    });
    document.getElementById("error-dismiss").addEventListener("click", function () {
      state.errorsDismissed = document.getElementById("error-text").textContent;
      document.getElementById("error-banner").hidden = true;
    });
    window.addEventListener("hashchange", route);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) refresh();
    });
    window.addEventListener("unhandledrejection", function (event) {
      // Last line of defence: report on the banner rather than in the console.
      event.preventDefault();
      var reason = event.reason;
      if (reason instanceof SignedOut) return;
      setError(t("page"), reason && reason.message ? reason.message : String(reason));
    });
    document.getElementById("signin-form").addEventListener("submit", onSignIn);
    document.getElementById("password-form").addEventListener("submit", onPasswordChange);
    document.getElementById("signout").addEventListener("click", onSignOut);
    document.getElementById("alert-list").addEventListener("click", onAlertAction);

    start();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
