// Live pages: replace the page's live part with what the server sends (server-sent events).
(function () {
  "use strict";
  var live = document.getElementById("live");
  var stamp = document.getElementById("updated");
  var dot = document.getElementById("connection");
  var clock = document.getElementById("clock");
  function hhmm(withSeconds) {
    var opts = { hour: "2-digit", minute: "2-digit", hour12: false };
    if (withSeconds) { opts.second = "2-digit"; }
    return new Date().toLocaleTimeString([], opts);
  }
  function connected(ok) {
    if (!dot) { return; }
    dot.className = "connection " + (ok ? "online" : "offline");
    dot.textContent = ok ? dot.dataset.liveText : dot.dataset.offlineText;
  }
  if (clock) {
    clock.textContent = hhmm(false);
    setInterval(function () { clock.textContent = hhmm(false); }, 1000);
  }
  if (stamp) { stamp.textContent = hhmm(false); }
  if (!live || !live.dataset.live || !window.EventSource) {
    setTimeout(function () { location.reload(); }, 30000);
    return;
  }
  function calls() {
    var seen = {};
    live.querySelectorAll("[data-call]").forEach(function (n) { seen[n.dataset.call] = true; });
    return seen;
  }
  var wasCalled = !!live.querySelector(".ticket.called");
  var source = new EventSource(live.dataset.live);
  source.addEventListener("open", function () { connected(true); });
  source.addEventListener("error", function () { connected(false); });
  source.addEventListener("update", function (event) {
    var data = JSON.parse(event.data);
    var before = calls();
    live.innerHTML = data.html;
    live.querySelectorAll("[data-call]").forEach(function (n) {
      if (!before[n.dataset.call]) { n.classList.add("fresh"); }
    });
    if (data.called && !wasCalled && navigator.vibrate) { navigator.vibrate([300, 150, 300]); }
    wasCalled = !!data.called;
    if (stamp) { stamp.textContent = hhmm(false); }
    connected(true);
  });
  source.addEventListener("problem", function (event) {
    source.close();
    var data = JSON.parse(event.data);
    if (data.kind === "AuthenticationFailed") { location.reload(); return; }
    var p = document.createElement("p");
    p.className = "message";
    p.textContent = data.detail;
    live.replaceChildren(p);
    connected(false);
  });
})();
