/* The desk's charts (admin/charts.html): fetches the numbers from data.json and draws them with
   the vendored Chart.js. No inline script, no CDN: the page's CSP allows only this site's files.
   Every number is also in the page's tables, so a failure here loses no information. */
(function () {
  "use strict";

  var root = document.getElementById("charts");
  if (!root) {
    return;
  }

  function fail() {
    var status = root.querySelector(".chart-status");
    if (status) {
      status.textContent = root.getAttribute("data-error") || "";
      status.hidden = false;
    }
    root.classList.add("charts-failed");
  }

  if (typeof window.Chart === "undefined" || !window.fetch) {
    fail();
    return;
  }

  var Chart = window.Chart;
  var css = window.getComputedStyle(document.documentElement);
  function colour(name, fallback) {
    return css.getPropertyValue(name).trim() || fallback;
  }
  var ink = colour("--ink", "#1d1d1b");
  var muted = colour("--muted", "#55534e");
  var line = colour("--line", "#d9d4c7");
  var palette = {
    total: colour("--accent", "#1f3a5f"),
    joined: colour("--ok", "#1e5b2e"),
    unsubscribed: colour("--danger", "#9b1c1c"),
    bounced: "#b86e00",
    erased: "#6f6b62",
    net: colour("--accent", "#1f3a5f"),
    delivered: colour("--ok", "#1e5b2e"),
    failed: colour("--danger", "#9b1c1c"),
    unsubscribes: "#b86e00",
    releaseBounced: "#6f6b62",
    complaints: "#6b2c91"
  };
  var locale = document.documentElement.lang || "nb";
  var numbers = new Intl.NumberFormat(locale);
  var reduceMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  Chart.defaults.font.family = "Helvetica, Arial, sans-serif";
  Chart.defaults.font.size = 13;
  Chart.defaults.color = muted;
  Chart.defaults.borderColor = line;
  Chart.defaults.locale = locale;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.animation = reduceMotion ? false : { duration: 300 };
  Chart.defaults.plugins.legend.labels.color = ink;
  Chart.defaults.plugins.legend.labels.usePointStyle = true;
  // The legend in the order of the data sets, whatever order they are drawn in.
  Chart.defaults.plugins.legend.labels.sort = function (a, b) { return a.datasetIndex - b.datasetIndex; };
  Chart.defaults.plugins.tooltip.mode = "index";
  Chart.defaults.plugins.tooltip.intersect = false;

  function wholeNumbers(axis) {
    axis.beginAtZero = true;
    axis.grace = "8%"; // the tallest bar or point clear of the top edge
    axis.ticks = axis.ticks || {};
    axis.ticks.precision = 0;
    return axis;
  }

  function shorten(text, length) {
    return text.length > length ? text.slice(0, length - 1) + "…" : text;
  }

  function drawSubscribers(data, text) {
    var canvas = document.getElementById("chart-subscribers");
    if (!canvas) {
      return;
    }
    var s = data.subscribers;
    // Not from zero, so that a day's change shows on a large list; never below zero.
    var low = Math.min.apply(null, s.total);
    var high = Math.max.apply(null, s.total);
    var pad = Math.max(1, Math.ceil((high - low) * 0.1));
    new Chart(canvas, {
      type: "line",
      data: {
        labels: s.labels,
        datasets: [{
          label: text.subscribers,
          data: s.total,
          borderColor: palette.total,
          backgroundColor: "rgba(31, 58, 95, 0.12)",
          fill: "origin",
          pointRadius: s.total.length > 60 ? 0 : 2,
          pointHoverRadius: 4,
          borderWidth: 2,
          tension: 0
        }]
      },
      options: {
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { title: function (items) { return s.titles[items[0].dataIndex]; } } }
        },
        scales: {
          x: { grid: { display: false }, ticks: { autoSkip: true, maxRotation: 0 } },
          y: { suggestedMin: Math.max(0, low - pad), suggestedMax: high + pad, ticks: { precision: 0 } }
        }
      }
    });
  }

  function drawChanges(data, text) {
    var canvas = document.getElementById("chart-changes");
    if (!canvas) {
      return;
    }
    var s = data.subscribers;
    function down(values) {
      return values.map(function (v) { return v ? -v : 0; });
    }
    function bars(label, values, colourName) {
      return { type: "bar", label: label, data: values, backgroundColor: palette[colourName], stack: "moves", order: 2 };
    }
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: s.labels,
        datasets: [
          bars(text.confirmed, s.confirmed, "joined"),
          bars(text.unsubscribed, down(s.unsubscribed), "unsubscribed"),
          bars(text.bounced, down(s.bounced), "bounced"),
          bars(text.erased, down(s.erased), "erased"),
          {
            type: "line",
            label: text.net,
            data: s.net,
            borderColor: palette.net,
            backgroundColor: palette.net,
            borderWidth: 2,
            pointRadius: s.net.length > 60 ? 0 : 2,
            order: 1
          }
        ]
      },
      options: {
        plugins: {
          tooltip: {
            callbacks: {
              title: function (items) { return s.titles[items[0].dataIndex]; },
              // Departures are drawn below the line; the tooltip tells them as counts.
              label: function (item) {
                var value = item.dataset.type === "line" ? item.parsed.y : Math.abs(item.parsed.y);
                return item.dataset.label + ": " + numbers.format(value);
              }
            }
          }
        },
        scales: {
          x: { stacked: true, grid: { display: false }, ticks: { autoSkip: true, maxRotation: 0 } },
          y: wholeNumbers({
            stacked: true,
            // Below zero are departures: the axis says so with a minus sign (U+2212 in bokmål).
            ticks: { callback: function (value) { return numbers.format(value); } },
            grid: { color: function (ctx) { return ctx.tick && ctx.tick.value === 0 ? muted : line; } }
          })
        }
      }
    });
  }

  function drawReleases(data, text) {
    var canvas = document.getElementById("chart-releases");
    if (!canvas || !data.releases.length) {
      return;
    }
    var releases = data.releases;
    // Titles cut to the room each bar has; the tooltip and the table give them whole.
    var room = Math.max(6, Math.floor(canvas.parentNode.clientWidth / releases.length / 8));
    function pick(name) {
      return releases.map(function (r) { return r[name]; });
    }
    // Readers (right axis) as points over the bars of messages (left axis).
    function readers(label, name, colourOf, shape) {
      return {
        type: "line",
        label: label,
        data: pick(name),
        borderColor: colourOf,
        backgroundColor: colourOf,
        pointBorderColor: "#ffffff",  // set off against the bars behind
        pointBorderWidth: 1.5,
        showLine: false,
        pointRadius: 6,
        pointHoverRadius: 8,
        pointStyle: shape,
        yAxisID: "y1",
        order: 1
      };
    }
    var chart = new Chart(canvas, {
      data: {
        labels: releases.map(function (r) { return shorten(r.title, room); }),
        datasets: [
          { type: "bar", label: text.delivered, data: pick("delivered"), backgroundColor: palette.delivered, stack: "messages", yAxisID: "y", order: 2 },
          { type: "bar", label: text.failed, data: pick("failed"), backgroundColor: palette.failed, stack: "messages", yAxisID: "y", order: 2 },
          readers(text.unsubscribes, "unsubscribed", palette.unsubscribes, "rectRot"),
          readers(text.bounced, "bounced", palette.releaseBounced, "triangle"),
          readers(text.complaints, "complained", palette.complaints, "circle")
        ]
      },
      options: {
        onClick: function (event, elements) {
          if (elements.length) {
            window.location.assign(releases[elements[0].index].url);
          }
        },
        plugins: {
          tooltip: {
            callbacks: {
              title: function (items) {
                var r = releases[items[0].dataIndex];
                return r.sent_on ? [r.title, r.sent_on] : r.title;
              }
            }
          }
        },
        scales: {
          x: { stacked: true, grid: { display: false }, ticks: { maxRotation: 0, autoSkip: true } },
          y: wholeNumbers({ stacked: true, position: "left", title: { display: true, text: text.messages } }),
          y1: wholeNumbers({
            position: "right",
            grid: { drawOnChartArea: false },
            title: { display: true, text: text.readers }
          })
        }
      }
    });
    canvas.addEventListener("mousemove", function (event) {
      var hits = chart.getElementsAtEventForMode(event, "index", { intersect: false }, false);
      canvas.classList.toggle("chart-link", hits.length > 0);
    });
  }

  fetch(root.getAttribute("data-source"), {
    credentials: "same-origin",
    headers: { Accept: "application/json" }
  })
    .then(function (answer) {
      if (!answer.ok || (answer.headers.get("Content-Type") || "").indexOf("application/json") !== 0) {
        throw new Error("no chart data");
      }
      return answer.json();
    })
    .then(function (data) {
      drawSubscribers(data, data.text);
      drawChanges(data, data.text);
      drawReleases(data, data.text);
      root.classList.add("charts-ready");
    })
    .catch(fail);
})();
