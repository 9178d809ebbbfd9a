/* The archive's search: word-prefix matching over window.ARCHIVE_INDEX (search-index.js),
   entirely in the browser, from file:// as well as from a web server. Every query word
   must begin a word of the entry's title or summary; title matches and newer issues
   rank first. Results are built with textContent: nothing from the index is parsed. */
(function () {
  "use strict";
  var LIMIT = 100;
  var data = window.ARCHIVE_INDEX || { issues: [], entries: [] };
  var labels = {};
  data.issues.forEach(function (issue) { labels[issue.month] = issue.label; });

  function words(text) {
    return text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
      .split(/[^\p{L}\p{N}]+/u).filter(Boolean);
  }

  var entries = data.entries.map(function (entry) {
    return { entry: entry, title: words(entry.title), summary: words(entry.summary) };
  });

  function begins(list, prefix) {
    for (var i = 0; i < list.length; i++) {
      if (list[i].lastIndexOf(prefix, 0) === 0) return true;
    }
    return false;
  }

  function search(query) {
    var terms = words(query);
    if (!terms.length) return null;
    var hits = [];
    entries.forEach(function (item) {
      var score = 0;
      for (var i = 0; i < terms.length; i++) {
        if (begins(item.title, terms[i])) score += 2;
        else if (begins(item.summary, terms[i])) score += 1;
        else return;
      }
      hits.push({ item: item, score: score });
    });
    hits.sort(function (a, b) {
      return b.score - a.score || (a.item.entry.month < b.item.entry.month ? 1 : a.item.entry.month > b.item.entry.month ? -1 : 0);
    });
    return hits.map(function (hit) { return hit.item.entry; });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  function show(query) {
    var list = document.getElementById("results");
    var status = document.getElementById("status");
    var found = search(query);
    list.textContent = "";
    if (found === null) {
      status.textContent = data.entries.length + " entries in " + data.issues.length + " issues.";
      return;
    }
    var shown = found.slice(0, LIMIT);
    status.textContent = (found.length === 0 ? "No entry matches" :
      found.length === 1 ? "1 entry matches" : found.length + " entries match") +
      " \u201c" + query.trim() + "\u201d" +
      (found.length > LIMIT ? "; the first " + LIMIT + " are shown." : ".");
    shown.forEach(function (entry) {
      var item = el("li");
      var title = el("a", "title", entry.title);
      title.href = entry.url;
      item.appendChild(title);
      var where = el("p", "meta");
      var link = el("a", "", (labels[entry.month] || entry.month) + ", " + entry.section);
      link.href = entry.page;
      where.appendChild(link);
      item.appendChild(where);
      item.appendChild(el("p", "summary", entry.summary));
      list.appendChild(item);
    });
  }

  var input = document.getElementById("q");
  var initial = new URLSearchParams(window.location.search).get("q") || "";
  input.value = initial;
  input.addEventListener("input", function () { show(input.value); });
  input.form.addEventListener("submit", function (event) {
    event.preventDefault();
    show(input.value);
  });
  show(initial);
})();
