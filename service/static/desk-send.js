// The live send view: polls the release's progress and updates the page without reloading.
(function () {
  "use strict";
  const view = document.getElementById("send-view");
  if (!view) return;
  const url = view.dataset.progressUrl;
  const units = document.getElementById("time-units").dataset;
  const labels = document.getElementById("state-labels").dataset;
  const ACTIVE = ["sending", "paused"];
  const $ = (id) => document.getElementById(id);
  let lastSent = null;
  let lastAt = null;
  let rate = null;
  let lookedOnceMore = false;

  function duration(seconds) {
    if (seconds === null || seconds === undefined || seconds === "") return "–";
    seconds = Math.max(0, Math.ceil(seconds));
    if (seconds < 90) return units.seconds.replace("{}", seconds);
    if (seconds < 5400) return units.minutes.replace("{}", Math.round(seconds / 60));
    return units.hours.replace("{}", (seconds / 3600).toFixed(1));
  }

  function text(id, value) {
    const element = $(id);
    if (element && element.textContent !== String(value)) element.textContent = value;
  }

  function show(data) {
    const now = Date.now();
    // The recent rate, from what changed between two polls; the average since the start
    // until there is something to compare.
    if (lastSent !== null && data.state === "sending" && now > lastAt) {
      const recent = ((data.sent - lastSent) * 1000) / (now - lastAt);
      rate = rate === null ? recent : 0.7 * rate + 0.3 * recent;
    }
    lastSent = data.sent;
    lastAt = now;
    const shownRate = data.state === "sending" && rate !== null ? rate : data.rate;
    const progress = $("send-progress");
    progress.value = data.percent;
    progress.textContent = data.percent + " %";
    text("send-percent", data.percent);
    text("send-sent", data.sent);
    text("send-total", data.total);
    $("send-planning").hidden = !data.planning;
    for (const name of ["sent", "failed", "deferred", "pending", "skipped"]) {
      text("stat-" + name, data[name]);
    }
    text("stat-rate", shownRate === null || shownRate === undefined ? "–" : shownRate.toFixed(1));
    let eta = data.eta_seconds;
    if (data.state === "sending" && shownRate > 0) eta = data.pending / shownRate;
    text("stat-eta", ACTIVE.includes(data.state) ? duration(eta) : units.done);
    const badge = $("send-state");
    badge.className = "badge badge-" + data.state;
    badge.dataset.state = data.state;
    text("send-state", labels[data.state] || data.state);
    const reason = $("send-paused-reason");
    reason.hidden = !(data.state === "paused" && data.pause_reason);
    if (!reason.hidden) text("send-paused-reason", reason.dataset.template.replace("{}", data.pause_reason));
    for (const form of document.querySelectorAll("#send-controls form")) {
      const action = form.dataset.action;
      form.hidden = !(
        (action === "pause" && data.state === "sending") ||
        (action === "resume" && data.state === "paused") ||
        (action === "cancel" && ACTIVE.includes(data.state))
      );
    }
    return ACTIVE.includes(data.state);
  }

  async function poll() {
    let again = true;
    try {
      const answer = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!answer.ok || !answer.headers.get("Content-Type").includes("json")) throw new Error(answer.status);
      again = show(await answer.json());
      $("send-stale").hidden = true;
    } catch (error) {
      $("send-stale").hidden = false;
    }
    // Once the send is over the numbers stop changing: look once more a little later, as the
    // last rows may be recorded a moment after the state flips, and then stop.
    if (again) {
      setTimeout(poll, 1000);
    } else if (!lookedOnceMore) {
      lookedOnceMore = true;
      setTimeout(poll, 5000);
    }
  }

  $("stat-eta").textContent = duration($("stat-eta").dataset.eta);
  poll();
})();
