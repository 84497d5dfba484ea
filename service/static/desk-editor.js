// The editor's live preview: the form's text, rendered as the email, in two frames.
(function () {
  "use strict";
  const form = document.getElementById("release-form");
  if (!form) return;
  const previewUrl = form.dataset.previewUrl;
  const language = document.getElementById("preview_language");
  let timer = null;

  function render() {
    const action = form.getAttribute("action");
    const parts = ["html", "text"];
    for (const part of parts) {
      const query = new URLSearchParams({ part: part, language: language.value });
      // A form submitted into a frame: the preview is a page of its own, with a policy that
      // lets the email's inlined styles apply (a script-made document could not).
      form.setAttribute("action", previewUrl + "?" + query.toString());
      form.setAttribute("target", "preview-" + part);
      form.submit();
    }
    form.setAttribute("action", action);
    form.removeAttribute("target");
  }

  function soon() {
    clearTimeout(timer);
    timer = setTimeout(render, 700);
  }

  // The translation is in the language the main text is not: its heading follows the choice.
  const primary = document.getElementById("language");
  const translation = document.getElementById("translation");
  if (primary && translation) {
    primary.addEventListener("change", function () {
      const other = primary.value === "nb" ? "en" : "nb";
      translation.querySelector("summary").textContent = translation.dataset["summary" + other[0].toUpperCase() + other.slice(1)];
      for (const code of translation.querySelectorAll(".other-code")) code.textContent = other;
      for (const field of translation.querySelectorAll("input, textarea")) field.lang = other;
    });
  }

  form.addEventListener("input", soon);
  form.addEventListener("change", soon);
  document.getElementById("preview-button").addEventListener("click", function (event) {
    event.preventDefault();
    render();
  });
  if (!form.querySelector("#title").value) return;
  render();
})();
