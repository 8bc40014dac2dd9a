/* Bulletin HR translation editor: the live preview of the translation being written, from the
   compose page's own preview endpoint (/hr/preview/), so it is rendered and sanitised exactly
   as it will be sent. The preview HTML is the server's sanitised markdown_to_html output; every
   other value is inserted as text (textContent), never as HTML. Vanilla JS, no dependencies. */
(function () {
  "use strict";

  var form = document.getElementById("translation");
  if (!form) { return; }

  function byId(id) { return document.getElementById(id); }

  function text(el, value) { if (el) { el.textContent = value == null ? "" : String(value); } }

  function csrfToken() {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  var status = byId("preview-status");
  var seq = 0;

  function show(mine, data) {
    if (mine !== seq) { return; }  /* only the answer to the latest request is shown */
    if (data.error) { text(status, data.error); return; }
    text(byId("preview-title"), data.title);
    text(byId("preview-reader"), data.reader || "you");
    /* data.html is the server's sanitised HTML (markdown_to_html: raw HTML off, then nh3). */
    byId("preview-html").innerHTML = data.html ||
      "<p class=\"muted\">Start typing to see the preview.</p>";
    text(status, "");
    form.setAttribute("data-preview-ready", String(mine));
  }

  function refresh() {
    var mine = ++seq;
    var body = new URLSearchParams();
    body.set("title", form.elements.title.value);
    body.set("body", form.elements.body.value);
    text(status, "updating…");
    fetch(form.getAttribute("data-preview-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" },
      body: body
    }).then(function (response) { return response.json(); })
      .then(function (data) { show(mine, data); })
      .catch(function () { if (mine === seq) { text(status, "(preview unavailable)"); } });
  }

  var timer = null;
  function soon() { clearTimeout(timer); timer = setTimeout(refresh, 250); }

  form.addEventListener("input", function (event) {
    var name = event.target.name;
    if (name === "title" || name === "body") { soon(); }
  });
  refresh();
})();
