// The participant's page of a pgpis user study (written by `pgpis user-study make`).
// Works from file:// and any static host (answers kept in this browser and downloaded at the end)
// and under `pgpis user-study serve` (each answer also sent to the server the moment it is given).
// The study's items come from study-data.js (window.PGPIS_STUDY); nothing here names a run.
(function () {
  "use strict";
  var DATA = window.PGPIS_STUDY;
  var ANSWERS_FORMAT = "pgpis-user-study-answers/1";
  var ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;
  var FIXATION_MS = 500; // a blank stage with a cross before each part-2 picture
  var app = document.getElementById("app");
  var state = null; // {participant, started_at, finished_at, answers: [record]}
  var server = false; // true when `pgpis user-study serve` answers api/study for this study
  var keyHandler = null;
  var busy = false;
  var order = null; // this participant's order of the items (see participantOrder)

  // ------------------------------------------------------------------ helpers
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "html") node.innerHTML = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { node.appendChild(c); });
    return node;
  }
  function show(children) {
    keyHandler = null;
    app.replaceChildren.apply(app, children);
    window.scrollTo(0, 0);
  }
  function frame() { return new Promise(function (r) { requestAnimationFrame(r); }); }
  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }
  function decoded(img) {
    return img.decode().catch(function () {
      return new Promise(function (r) { if (img.complete) r(); else img.onload = img.onerror = r; });
    });
  }
  function notice(text) {
    var n = document.getElementById("notice");
    n.textContent = text || "";
    n.hidden = !text;
  }
  function storageKey(participant) {
    return "pgpis-study:" + DATA.study.id + ":" + DATA.study.key_sha256 + ":" + participant;
  }
  function persist() {
    try { localStorage.setItem(storageKey(state.participant), JSON.stringify(state)); }
    catch (e) { notice("This browser does not keep your answers (storage blocked): please do not reload."); }
  }
  function restore(participant) {
    try { return JSON.parse(localStorage.getItem(storageKey(participant)) || "null"); } catch (e) { return null; }
  }
  function answered(item) {
    for (var i = 0; i < state.answers.length; i++) if (state.answers[i].item === item) return state.answers[i];
    return null;
  }
  function progress() {
    var total = DATA.items.length, done = state.answers.length;
    document.getElementById("bar").hidden = false;
    document.getElementById("progress-text").textContent =
      done < total ? "Question " + (done + 1) + " of " + total : "All " + total + " answered";
    document.getElementById("progress-fill").style.width = (100 * done / total) + "%";
  }
  document.addEventListener("keydown", function (e) {
    if (!keyHandler || e.repeat || e.altKey || e.ctrlKey || e.metaKey) return;
    if (keyHandler(e.key)) e.preventDefault();
  });

  // Each participant sees part 1's questions, part 2's blocks and each block's pictures in an order of
  // their own (so no order effect is shared by everyone), drawn from their id: a reload, another
  // device or the server gives the same order. Parts stay in order and a block stays together.
  function seeded(text) {
    var h = 2166136261;
    for (var i = 0; i < text.length; i++) { h ^= text.charCodeAt(i); h = Math.imul(h, 16777619); }
    return function () { // mulberry32
      h = (h + 0x6D2B79F5) | 0;
      var t = Math.imul(h ^ (h >>> 15), 1 | h);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  function shuffled(list, random) {
    var a = list.slice();
    for (var i = a.length - 1; i > 0; i--) { var j = Math.floor(random() * (i + 1)); var t = a[i]; a[i] = a[j]; a[j] = t; }
    return a;
  }
  function participantOrder(participant) {
    var random = seeded(DATA.study.key_sha256 + ":" + participant);
    var best = DATA.items.filter(function (it) { return it.kind === "best"; });
    var blocks = {};
    DATA.items.forEach(function (it) { if (it.kind === "real_fake") (blocks[it.block] = blocks[it.block] || []).push(it); });
    var out = shuffled(best, random);
    shuffled(Object.keys(blocks), random).forEach(function (b, k, all) {
      shuffled(blocks[b], random).forEach(function (it) {
        out.push({ id: it.id, kind: it.kind, image: it.image, block: k + 1, blocks: all.length });
      });
    });
    return out;
  }

  // ------------------------------------------------------------------ server (when served)
  function api(path, body) {
    var init = { cache: "no-store", headers: { "Content-Type": "application/json" } };
    if (body) { init.method = "POST"; init.body = JSON.stringify(body); }
    return fetch("api/" + path, init).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) { return { status: r.status, body: j }; });
    });
  }
  function detectServer() {
    if (location.protocol !== "http:" && location.protocol !== "https:") return Promise.resolve(false);
    return api("study").then(function (r) {
      return r.status === 200 && r.body.key_sha256 === DATA.study.key_sha256;
    }).catch(function () { return false; });
  }
  // Send one answer until the server has it; the server keeps the first answer to an item.
  function send(record) {
    var body = { study: DATA.study, participant: state.participant, item: record.item, answer: record.answer,
                 response_ms: record.response_ms, shown_ms: record.shown_ms, answered_at: record.answered_at };
    return api("answers", body).then(function (r) {
      if (r.status === 200 || r.status === 409) {
        if (r.status === 409 && r.body.existing) record.answer = r.body.existing.answer; // first answer stands
        record.saved = true; notice(""); persist(); return;
      }
      var error = new Error((r.body && r.body.error) || ("server answered " + r.status));
      error.refused = r.status >= 400 && r.status < 500; // the server will never take it: do not retry
      throw error;
    }).catch(function (err) {
      if (err.refused) { notice("The study server refused the answer: " + err.message); throw err; }
      notice("Could not save your answer to the study server (" + err.message + "); retrying...");
      return sleep(2000).then(function () { return send(record); });
    });
  }
  function syncWithServer() {
    return api("answers?participant=" + encodeURIComponent(state.participant)).then(function (r) {
      if (r.status !== 200) throw new Error(r.body.error || ("server answered " + r.status));
      (r.body.answers || []).forEach(function (a) {
        var mine = answered(a.item);
        if (!mine) state.answers.push({ item: a.item, answer: a.answer, response_ms: a.response_ms,
          shown_ms: a.shown_ms, answered_at: a.answered_at, saved: true });
        else { mine.answer = a.answer; mine.saved = true; }
      });
      var ids = order.map(function (it) { return it.id; });
      state.answers.sort(function (a, b) { return ids.indexOf(a.item) - ids.indexOf(b.item); });
      persist();
      var unsaved = state.answers.filter(function (a) { return !a.saved; });
      return unsaved.reduce(function (p, a) { return p.then(function () { return send(a); }); }, Promise.resolve());
    });
  }

  // ------------------------------------------------------------------ screens
  function counts() {
    var best = 0, rf = 0;
    DATA.items.forEach(function (it) { if (it.kind === "best") best++; else rf++; });
    return { best: best, rf: rf };
  }
  function seconds(ms) { return (ms / 1000) + (ms === 1000 ? " second" : " seconds"); }

  function welcome() {
    var n = counts();
    var minutes = Math.max(1, Math.round((n.best * 10 + n.rf * (DATA.exposure_ms / 1000 + 2.5)) / 60));
    var params = new URLSearchParams(location.search);
    var given = params.get("participant") || params.get("pid") || "";
    var parts = [el("h1", { text: "Person image study" }),
      el("p", { text: "Thank you for taking part. There are " + DATA.items.length + " questions" +
        (n.best && n.rf ? " in two parts" : "") + "; it takes about " + minutes + " minute" + (minutes > 1 ? "s" : "") + "." })];
    if (n.best) parts.push(el("h2", { text: n.rf ? "Part 1: which picture is best?" : "Which picture is best?" }),
      el("p", { html: "You see a photo of a person (<em>source</em>) and a <em>target pose</em> drawn as a stick " +
        "figure. Pick the picture that best shows <b>the same person</b> (face, hair, clothes) <b>in the target pose</b> " +
        "and looks most like a real photo. Click it, or press its letter key." }));
    if (n.rf) parts.push(el("h2", { text: n.best ? "Part 2: real photo or generated?" : "Real photo or generated?" }),
      el("p", { html: "Each picture is shown alone for " + seconds(DATA.exposure_ms) + ", then hidden. Then answer: " +
        "was it a <b>real photo</b> or <b>generated</b> by a computer? Click, or press <kbd>R</kbd> (real) or " +
        "<kbd>G</kbd> (generated). About half of the pictures are real." }));
    parts.push(el("p", { class: "muted", text: "Answers cannot be changed once given. If the page is closed or " +
      "reloaded, you continue where you stopped." }));
    var input = el("input", { type: "text", id: "participant", autocomplete: "off", spellcheck: "false",
      placeholder: "e.g. P07", maxlength: "64" });
    input.value = given;
    if (given) input.readOnly = true;
    var error = el("div", { class: "error", id: "participant-error" });
    var start = el("button", { id: "start", type: "button", text: "Start" });
    function go() {
      var id = input.value.trim();
      if (!ID_PATTERN.test(id)) { error.textContent = "Please enter your participant ID (letters, digits, . _ - @; at most 64)."; return; }
      begin(id).catch(function (err) { error.textContent = "Could not start: " + err.message; });
    }
    start.addEventListener("click", go);
    input.addEventListener("keydown", function (e) { if (e.key === "Enter") go(); });
    input.addEventListener("input", function () { error.textContent = ""; });
    parts.push(el("label", { for: "participant", text: "Your participant ID" }), input, error,
      el("div", { class: "actions" }, [start]));
    show([el("section", { class: "panel", id: "welcome" }, parts)]);
    if (!given) input.focus();
    keyHandler = function (key) { if (key === "Enter" && given) { go(); return true; } return false; };
  }

  function begin(participant) {
    state = restore(participant) || { participant: participant, started_at: new Date().toISOString(),
      finished_at: null, answers: [] };
    order = participantOrder(participant);
    var ready = server ? syncWithServer() : Promise.resolve();
    return ready.then(function () { next(true); });
  }

  function next(resumed) {
    busy = false;
    progress();
    var item = null, index = 0;
    for (var i = 0; i < order.length; i++) if (!answered(order[i].id)) { item = order[i]; index = i; break; }
    if (!item) return done();
    if (item.kind === "best") return askBest(item);
    var previous = order[index - 1];
    var firstOfBlock = !previous || previous.kind !== "real_fake" || previous.block !== item.block;
    if (firstOfBlock || resumed) return blockIntro(item, resumed && !firstOfBlock);
    askRealFake(item);
  }

  function blockIntro(item, resumed) {
    var go = el("button", { id: "continue", type: "button", text: "Start (space)" });
    var title = (resumed ? "Welcome back. " : "") + (counts().best ? "Part 2: real photo or generated?" :
      "Real photo or generated?") + (item.blocks > 1 ? " Block " + item.block + " of " + item.blocks : "");
    show([el("section", { class: "panel", id: "block-intro" }, [
      el("h2", { text: title }),
      el("p", { html: "Each picture appears alone for " + seconds(DATA.exposure_ms) + " after a cross (+), then " +
        "disappears. Answer <kbd>R</kbd> for a real photo, <kbd>G</kbd> for generated." }),
      el("p", { class: "muted", text: "Take a short break if you like; continue when ready." }),
      el("div", { class: "actions" }, [go])])]);
    function start() { askRealFake(item); }
    go.addEventListener("click", start);
    go.focus();
    keyHandler = function (key) { if (key === " " || key === "Enter") { start(); return true; } return false; };
  }

  function record(item, answer, responseMs, shownMs) {
    if (busy || answered(item.id)) return; // one answer per item: never changed
    busy = true;
    keyHandler = null;
    var rec = { item: item.id, answer: answer, response_ms: Math.round(responseMs),
      shown_ms: shownMs === null ? null : Math.round(shownMs * 10) / 10,
      answered_at: new Date().toISOString(), saved: !server };
    state.answers.push(rec);
    persist();
    (server ? send(rec) : Promise.resolve()).then(function () { next(false); }, function () {});
  }

  function askBest(item) {
    var w = DATA.size[1], h = DATA.size[0];
    function picture(src, caption) {
      return el("figure", {}, [el("img", { src: src, width: w, height: h, alt: caption, draggable: "false" }),
        el("figcaption", { text: caption })]);
    }
    var buttons = item.options.map(function (opt) {
      var b = el("button", { class: "option", type: "button", "data-option": opt[0], disabled: "" }, [
        el("img", { src: opt[1], width: w, height: h, alt: "option " + opt[0], draggable: "false" }),
        el("span", { class: "letter", text: opt[0] })]);
      return b;
    });
    show([el("section", { class: "question", id: "best", "data-item": item.id }, [
      el("h2", { text: "Which picture is best?" }),
      el("p", { class: "prompt muted", text: "The same person as the source, in the target pose, most like a real photo. Click it or press its letter." }),
      el("div", { class: "given" }, [picture(item.source, "source"), picture(item.pose, "target pose")]),
      el("div", { class: "options" }, buttons)])]);
    var imgs = Array.prototype.slice.call(app.querySelectorAll("img"));
    Promise.all(imgs.map(decoded)).then(frame).then(function (t0) {
      buttons.forEach(function (b) {
        b.disabled = false;
        b.addEventListener("click", function () { record(item, b.getAttribute("data-option"), performance.now() - t0, null); });
      });
      keyHandler = function (key) {
        var letter = key.toUpperCase();
        var digit = parseInt(key, 10);
        if (digit >= 1 && digit <= item.options.length) letter = item.options[digit - 1][0];
        for (var i = 0; i < item.options.length; i++) if (item.options[i][0] === letter) {
          record(item, letter, performance.now() - t0, null); return true;
        }
        return false;
      };
    });
  }

  function askRealFake(item) {
    var w = DATA.size[1], h = DATA.size[0];
    var img = el("img", { id: "stimulus", src: item.image, alt: "", draggable: "false" });
    img.style.visibility = "hidden";
    var cross = el("div", { class: "fixation", text: "+" });
    var stage = el("div", { class: "stage", id: "stage" }, [cross, img]);
    stage.style.width = w + "px"; stage.style.height = h + "px";
    var real = el("button", { type: "button", id: "answer-real", disabled: "", text: "Real photo (R)" });
    var gen = el("button", { type: "button", id: "answer-generated", disabled: "", text: "Generated (G)" });
    var prompt = el("p", { class: "prompt", id: "rf-prompt", text: "Look at the picture." });
    show([el("section", { class: "question", id: "real-fake", "data-item": item.id }, [
      el("h2", { text: "Real photo or generated?" }), prompt, stage,
      el("div", { class: "answer-row" }, [real, gen])])]);
    decoded(img).then(function () { return sleep(FIXATION_MS); }).then(function () {
      return expose(img, cross, DATA.exposure_ms);
    }).then(function (shown) {
      var t0 = performance.now();
      prompt.textContent = "Was it a real photo or generated?";
      stage.setAttribute("data-shown-ms", String(Math.round(shown * 10) / 10));
      function pick(answer) { record(item, answer, performance.now() - t0, shown); }
      real.disabled = false; gen.disabled = false;
      real.addEventListener("click", function () { pick("real"); });
      gen.addEventListener("click", function () { pick("generated"); });
      keyHandler = function (key) {
        var k = key.toLowerCase();
        if (k === "r") { pick("real"); return true; }
        if (k === "g") { pick("generated"); return true; }
        return false;
      };
    });
  }

  // Show the picture in one animation frame and hide it in the first frame at least the exposure later
  // (minus half a frame, so the error is at most half a frame either way); return the time between
  // the two changes as the clock measured them when they were made: what the screen showed.
  function expose(img, cross, ms) {
    return new Promise(function (resolve) {
      requestAnimationFrame(function (frameAt) {
        cross.style.visibility = "hidden";
        img.style.visibility = "visible";
        var shownAt = performance.now(), last = frameAt;
        function tick(t) {
          var half = Math.min(8, (t - last) / 2), now = performance.now();
          last = t;
          if (now - shownAt >= ms - half) {
            img.style.visibility = "hidden";
            img.removeAttribute("src"); // gone from the page, not only invisible
            resolve(now - shownAt);
          } else requestAnimationFrame(tick);
        }
        requestAnimationFrame(tick);
      });
    });
  }

  function answersFile() {
    return { format: ANSWERS_FORMAT, study: DATA.study, participant: state.participant,
      started_at: state.started_at, finished_at: state.finished_at, exposure_ms: DATA.exposure_ms,
      user_agent: navigator.userAgent, collected: server ? "server" : "browser",
      answers: state.answers.map(function (a) {
        return { item: a.item, answer: a.answer, response_ms: a.response_ms, shown_ms: a.shown_ms, answered_at: a.answered_at };
      }) };
  }

  function done() {
    if (!state.finished_at) { state.finished_at = new Date().toISOString(); persist(); }
    var name = "answers-" + DATA.study.id + "-" + state.participant + ".json";
    var download = el("button", { id: "download", type: "button", text: "Download my answers" });
    download.addEventListener("click", function () {
      var blob = new Blob([JSON.stringify(answersFile(), null, 1) + "\n"], { type: "application/json" });
      var a = el("a", { href: URL.createObjectURL(blob), download: name });
      document.body.appendChild(a); a.click(); a.remove();
    });
    show([el("section", { class: "panel", id: "done" }, [
      el("h1", { text: "Thank you!" }),
      el("p", { text: "You have answered all " + DATA.items.length + " questions." }),
      el("p", { html: server ? "Your answers are saved on the study server. You may also keep a copy." :
        "Please download your answers and send the file <code>" + name.replace(/&/g, "&amp;").replace(/</g, "&lt;") +
        "</code> to the study team." }),
      el("div", { class: "actions" }, [download])])]);
  }

  // ------------------------------------------------------------------ start
  if (!DATA || !DATA.items) {
    app.replaceChildren(el("p", { class: "panel", text: "study-data.js is missing: this folder is not a complete study site." }));
    return;
  }
  detectServer().then(function (s) { server = s; welcome(); });
})();
