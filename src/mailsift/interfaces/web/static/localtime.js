// mailsift console: the one script of the console, and every page works without it.
// It shows each <time datetime="...Z"> in the viewer's own time zone (the UTC time stays as
// the element's tooltip) and tells the search forms which zone typed times are in.
(function () {
  "use strict";
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { zone = ""; }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function zoneName(d) {
    try {
      var parts = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" }).formatToParts(d);
      for (var i = 0; i < parts.length; i++) {
        if (parts[i].type === "timeZoneName") { return parts[i].value; }
      }
    } catch (e) { /* an old browser: no zone name */ }
    return zone;
  }
  function local(d) {
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + " " +
      zoneName(d);
  }
  var times = document.querySelectorAll("time[datetime]");
  for (var i = 0; i < times.length; i++) {
    var el = times[i];
    var d = new Date(el.getAttribute("datetime"));
    if (isNaN(d.getTime())) { continue; }
    el.title = el.textContent;
    el.textContent = local(d);
    el.setAttribute("data-localised", "");
  }
  var used = zone;
  var zones = document.querySelectorAll("input[data-viewer-zone]");
  for (var j = 0; j < zones.length; j++) {
    if (!zones[j].value) { zones[j].value = zone; }
    used = zones[j].value || zone;
  }
  if (used) {
    var names = document.querySelectorAll("[data-zone-name]");
    for (var k = 0; k < names.length; k++) { names[k].textContent = used; }
  }
})();
