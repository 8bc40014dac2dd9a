/* Bulletin HR compose page: live preview, audience count, people search, schedule builder and
   upcoming fire times. Vanilla JS, no dependencies. Everything it shows comes from the server:
   the preview HTML is the server's sanitised markdown_to_html output; every other value is
   inserted as text (textContent), never as HTML. */
(function () {
  "use strict";

  var form = document.getElementById("compose");
  if (!form) { return; }

  function debounce(fn, wait) {
    var timer = null;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(fn, wait);
    };
  }

  function csrfToken() {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function byId(id) { return document.getElementById(id); }

  function text(el, value) { if (el) { el.textContent = value == null ? "" : String(value); } }

  function clear(el) { while (el && el.firstChild) { el.removeChild(el.firstChild); } }

  function make(tag, className, content) {
    var el = document.createElement(tag);
    if (className) { el.className = className; }
    if (content != null) { el.textContent = content; }
    return el;
  }

  /* The current value of a named control, as a string ("" when an unticked checkbox). */
  function valueOf(name) {
    var control = form.elements[name];
    if (!control) { return ""; }
    if (control.type === "checkbox" || control.type === "radio") {
      return control.checked ? (control.value || "on") : "";
    }
    return control.value || "";
  }

  /* Each request carries a number; only the answer to the latest one is shown. */
  function latestOnly(render) {
    var seq = 0;
    return function (promise) {
      var mine = ++seq;
      return promise.then(function (data) { if (mine === seq) { render(data); } });
    };
  }

  function getJSON(url, params) {
    return fetch(url + "?" + params.toString(), {
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (response) { return response.json(); });
  }

  function scheduleParams() {
    var params = new URLSearchParams(new FormData(form));
    params.delete("title");
    params.delete("body");
    params.delete("csrfmiddlewaretoken");
    return params;
  }

  /* --- Show only what applies: data-when="name:value|value", data-unless="name:value" --- */
  function matches(rule) {
    var parts = rule.split(":");
    var wanted = parts[1].split("|");
    return wanted.indexOf(valueOf(parts[0])) !== -1;
  }

  function applyConditions() {
    form.querySelectorAll("[data-when]").forEach(function (el) {
      el.classList.toggle("shown", matches(el.getAttribute("data-when")));
    });
    form.querySelectorAll("[data-unless]").forEach(function (el) {
      el.classList.toggle("shown", !matches(el.getAttribute("data-unless")));
    });
    var cron = byId("id_cron");
    if (cron) { cron.readOnly = valueOf("repeat") !== "custom"; }
  }

  /* --- Live preview ------------------------------------------------------------------- */
  var previewHtml = byId("preview-html");
  var previewStatus = byId("preview-status");
  var showPreview = latestOnly(function (data) {
    if (data.error) { text(previewStatus, data.error); return; }
    text(byId("preview-title"), data.title);
    text(byId("preview-reader"), data.reader || "you");
    /* data.html is the server's sanitised HTML (markdown_to_html: raw HTML off, then nh3). */
    previewHtml.innerHTML = data.html || "<p class=\"muted\">Start typing to see the preview.</p>";
    text(byId("preview-chat"), (data.title ? data.title + "\n\n" : "") + (data.chat || ""));
    /* One sentence per channel: does the text fit, or where is it cut (plain text only). */
    var limits = byId("preview-limits");
    clear(limits);
    (data.limits || []).forEach(function (line) { limits.appendChild(make("li", "", line)); });
    text(previewStatus, "");
    form.setAttribute("data-preview-ready", "1");
  });

  function refreshPreview() {
    var body = new URLSearchParams();
    body.set("title", valueOf("title"));
    body.set("body", valueOf("body"));
    text(previewStatus, "updating…");
    showPreview(fetch(form.getAttribute("data-preview-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" },
      body: body
    }).then(function (response) { return response.json(); })).catch(function () {
      text(previewStatus, "(preview unavailable)");
    });
  }

  /* --- Audience ------------------------------------------------------------------------ */
  var showAudience = latestOnly(function (data) {
    if (data.error) { text(byId("audience-count"), "?"); return; }
    text(byId("audience-count"), data.count);
    text(byId("audience-count-label"), data.count === 1 ? "person" : "people");
    var sample = data.sample || [];
    var more = data.count - sample.length;
    var problems = data.problems || [];
    text(byId("audience-sample"), sample.length
      ? "For example: " + sample.join(", ") + (more > 0 ? " and " + more + " more" : "")
      : (problems.length ? "Nobody matches: " + problems.join("; ") + "." : "Nobody matches yet."));
    var skipped = (data.opted_out || []).map(function (row) {
      return row.count + " opted out of " + row.channel + " and will be skipped there";
    });
    text(byId("audience-opted-out"), skipped.length ? skipped.join("; ") + " (tick Mandatory to override)." : "");
  });

  function refreshAudience() {
    showAudience(getJSON(form.getAttribute("data-audience-url"), scheduleParams()));
  }

  /* --- People search ------------------------------------------------------------------- */
  var chosen = byId("people-chosen");
  var results = byId("people-results");

  function chosenIds() {
    var ids = {};
    chosen.querySelectorAll("input[name=recipients]").forEach(function (box) {
      if (box.checked) { ids[box.value] = true; }
    });
    return ids;
  }

  function addPerson(person) {
    if (chosenIds()[String(person.id)]) { return; }
    var item = make("li");
    var label = make("label", "choice");
    var box = document.createElement("input");
    box.type = "checkbox";
    box.name = "recipients";
    box.value = String(person.id);
    box.checked = true;
    label.appendChild(box);
    label.appendChild(document.createTextNode(" " + person.name + " "));
    label.appendChild(make("span", "muted", person.email));
    item.appendChild(label);
    chosen.appendChild(item);
    refreshAudience();
    refreshFires();
  }

  var showPeople = latestOnly(function (data) {
    clear(results);
    (data.results || []).forEach(function (person) {
      var item = make("li");
      var who = make("span", null, person.name + " ");
      who.appendChild(make("span", "muted", person.email + (person.where ? " · " + person.where : "")));
      var add = make("button", "secondary", "Add");
      add.type = "button";
      add.setAttribute("aria-label", "Add " + person.name);
      add.addEventListener("click", function () { addPerson(person); item.remove(); });
      item.appendChild(who);
      item.appendChild(add);
      results.appendChild(item);
    });
  });

  function searchPeople() {
    var query = byId("people-search").value.trim();
    if (query.length < 2) { clear(results); return; }
    showPeople(getJSON(form.getAttribute("data-people-url"), new URLSearchParams({ q: query })));
  }

  /* --- Schedule: builder, fire times, gap/fold question ------------------------------- */
  var cronField = byId("id_cron");
  var question = byId("at-question");

  function renderQuestion(data) {
    if (!data) {
      question.hidden = true;
      clear(question);
      return;
    }
    var chosenValue = data.chosen || valueOf("at_choice");
    clear(question);
    var message = make("p", "question-text", data.message);
    message.id = "at-question-text";
    question.appendChild(message);
    data.choices.forEach(function (choice) {
      var label = make("label", "choice");
      var radio = document.createElement("input");
      radio.type = "radio";
      radio.name = "at_choice";
      radio.value = choice.value;
      radio.checked = choice.value === chosenValue;
      radio.addEventListener("change", refreshFires);
      label.appendChild(radio);
      label.appendChild(document.createTextNode(" " + choice.label));
      question.appendChild(label);
    });
    question.hidden = false;
  }

  /* Who receives the next send later, and why (working hours): plain text lines only. */
  function renderWaiting(waiting) {
    var lines = byId("fires-waiting-lines");
    clear(lines);
    text(byId("fires-waiting-note"), waiting ? waiting.note : "");
    ((waiting && waiting.lines) || []).forEach(function (line) {
      lines.appendChild(make("li", "", line));
    });
  }

  var showFires = latestOnly(function (data) {
    var list = byId("fires");
    clear(list);
    text(byId("fires-empty"), "");
    renderWaiting(data.waiting);
    if (valueOf("schedule_kind") === "cron" && valueOf("repeat") !== "custom" && data.cron) {
      cronField.value = data.cron;
    }
    text(byId("fires-description"), data.description || "");
    text(byId("fires-zone"), data.zone_note || (data.zone ? "Times in " + data.zone + "." : ""));
    if (valueOf("schedule_kind") !== "cron") { renderQuestion(data.question); }
    var errors = data.errors || {};
    var problems = Object.keys(errors).map(function (key) { return errors[key]; });
    if (problems.length) {
      text(byId("fires-empty"), problems.join(" "));
      return;
    }
    if (data.question && !data.question.chosen) {
      text(byId("fires-empty"), "Choose which time you mean to see when it is sent.");
      return;
    }
    (data.fires || []).forEach(function (fire) {
      var item = make("li");
      item.appendChild(make("span", "when", fire.local));
      item.appendChild(make("span", "utc", fire.utc));
      if (fire.note) { item.appendChild(make("span", "note", fire.note)); }
      list.appendChild(item);
    });
    if (data.empty) { text(byId("fires-empty"), data.empty); }
    form.setAttribute("data-fires-ready", "1");
  });

  function refreshFires() {
    showFires(getJSON(form.getAttribute("data-fire-times-url"), scheduleParams()));
  }

  /* --- Wiring -------------------------------------------------------------------------- */
  var previewSoon = debounce(refreshPreview, 250);
  var audienceSoon = debounce(refreshAudience, 250);
  var firesSoon = debounce(refreshFires, 250);
  var searchSoon = debounce(searchPeople, 250);

  var audienceNames = ["audience_kind", "department", "location", "recipients", "channels", "mandatory"];
  var scheduleNames = ["schedule_kind", "at_local", "at_choice", "repeat", "weekdays", "month_day",
    "time_of_day", "cron", "timezone", "timezone_other", "per_recipient_zone", "working_hours",
    "mandatory", "channels"];

  function onChange(event) {
    var name = event.target.name;
    applyConditions();
    if (name === "title" || name === "body") { previewSoon(); }
    if (audienceNames.indexOf(name) !== -1) { audienceSoon(); }
    if (scheduleNames.indexOf(name) !== -1 || name === "recipients" || name === "audience_kind" ||
        name === "department" || name === "location") {
      if (name === "at_local" || name === "timezone" || name === "timezone_other") {
        /* A new time or zone is a new question: a previous answer no longer applies. */
        form.querySelectorAll("input[name=at_choice]").forEach(function (r) { r.checked = false; });
      }
      firesSoon();
    }
    if (event.target.id === "people-search") { searchSoon(); }
  }

  form.addEventListener("input", onChange);
  form.addEventListener("change", onChange);
  /* Enter in the people search looks people up; it does not submit the form. */
  byId("people-search").addEventListener("keydown", function (event) {
    if (event.key === "Enter") { event.preventDefault(); searchPeople(); }
  });

  applyConditions();
  refreshPreview();
  refreshAudience();
  refreshFires();
})();
