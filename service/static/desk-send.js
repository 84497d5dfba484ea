// The live send view: polls the release's progress and updates the page without reloading.
// Numbers are written for the page's language (<html lang>) by Intl, as the server's Babel
// writes them in the first rendering: "37,5", "1 200", "37,5 %" in bokmål.
(function () {
  "use strict";
  const view = document.getElementById("send-view");
  if (!view) return;
  const url = view.dataset.progressUrl;
  const units = document.getElementById("time-units").dataset;
  const locale = document.documentElement.lang || "nb";
  const count = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
  const decimal = new Intl.NumberFormat(locale, { maximumFractionDigits: 1 });
  const share = new Intl.NumberFormat(locale, { style: "percent", maximumFractionDigits: 1 });
  const unit = (name, digits) =>
    new Intl.NumberFormat(locale, { style: "unit", unit: name, unitDisplay: "short", maximumFractionDigits: digits });
  const seconds = unit("second", 0);
  const minutes = unit("minute", 0);
  const hours = unit("hour", 1);
  const labels = document.getElementById("state-labels").dataset;
  const ACTIVE = ["sending", "paused"];
  const $ = (id) => document.getElementById(id);
  let lastSent = null;
  let lastAt = null;
  let rate = null;
  let lookedOnceMore = false;

  // The same steps as the server's l10n.duration: seconds, then minutes, then hours.
  function duration(left) {
    if (left === null || left === undefined) return "–";
    left = Math.max(0, Math.ceil(left));
    if (left < 90) return seconds.format(left);
    if (left < 5400) return minutes.format(Math.round(left / 60));
    return hours.format(Math.round(left / 360) / 10);
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
    progress.textContent = share.format(data.percent / 100);
    text("send-percent", share.format(data.percent / 100));
    text("send-sent", count.format(data.sent));
    text("send-total", count.format(data.total));
    $("send-planning").hidden = !data.planning;
    for (const name of ["sent", "failed", "deferred", "pending", "at_once", "in_digests", "digest_waiting", "skipped", "bounced", "complained"]) {
      text("stat-" + name, count.format(data[name]));
    }
    text("stat-rate", shownRate === null || shownRate === undefined ? "–" : decimal.format(shownRate));
    let eta = data.eta_seconds;
    if (data.state === "sending" && shownRate > 0) eta = data.pending / shownRate;
    text("stat-eta", ACTIVE.includes(data.state) ? duration(eta) : units.done);
    const badge = $("send-state");
    badge.className = "badge badge-" + data.state;
    badge.dataset.state = data.state;
    text("send-state", labels[data.state] || data.state);
    const reason = $("send-paused-reason");
    reason.hidden = !(data.state === "paused" && data.pause_reason);
    if (!reason.hidden) {
      const guards = {
        complaints: reason.dataset.guardComplaints,
        bounces: reason.dataset.guardBounces,
        refusals: reason.dataset.guardRefusals,
      };
      const guard = guards[data.pause_guard] || null;
      text("send-paused-reason", guard || reason.dataset.template.replace("{}", data.pause_reason));
    }
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

  poll();
})();
