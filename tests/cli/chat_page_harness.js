// Runs the <script> of a scaffolded public/index.html under Node against a live server, with
// a minimal stand-in for the DOM, and drives it as a user would: join, say, status, action.
// usage: node --experimental-websocket chat_page_harness.js <index.html> <port>
// Prints one JSON line: {"ok": true, ...} or {"error": "...", "log": "..."}.
"use strict";
const fs = require("fs");
const [htmlPath, port] = process.argv.slice(2);
const html = fs.readFileSync(htmlPath, "utf8");
const script = html.match(/<script>([\s\S]*?)<\/script>/)[1];

class Element {
  constructor(id) {
    Object.assign(this, { id, children: [], listeners: {}, textContent: "", className: "", hidden: true,
                          value: "", scrollTop: 0, clientHeight: 0, scrollHeight: 0 });
  }
  addEventListener(type, fn) { (this.listeners[type] ||= []).push(fn); }
  append(...nodes) { this.children.push(...nodes); }
  fire(type) { for (const fn of this.listeners[type] || []) fn({ preventDefault() {} }); }
  get text() {
    return [this.textContent, ...this.children.map((c) => (typeof c === "string" ? c : c.text))].join(" ");
  }
}
const elements = {};
globalThis.document = {
  getElementById: (id) => (elements[id] ||= new Element(id)),
  createElement: (tag) => new Element(tag),
};
const origin = `http://127.0.0.1:${port}`;
globalThis.location = { protocol: "http:", host: `127.0.0.1:${port}` };
const realFetch = globalThis.fetch;
globalThis.fetch = (url, options) => realFetch(new URL(url, origin), options);

(0, eval)(script);

const log = () => elements.log.text;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function until(predicate, what, ms = 5000) {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > ms) {
      console.log(JSON.stringify({ error: "timed out waiting for " + what, log: log(), state: elements.state.textContent }));
      process.exit(1);
    }
    await sleep(20);
  }
}

(async () => {
  await until(() => log().includes("joined defaultRoom"), "roomAdd");
  document.getElementById("message").value = "hello from node";
  elements.say.fire("submit");
  await until(() => log().includes("me hello from node"), "the chat message (context user)");
  elements.status.fire("click");
  await until(() => !elements.output.hidden, "GET /api/status");
  elements.random.fire("click");
  await until(() => /randomNumber: 0\.\d+/.test(log()), "the randomNumber action");
  elements.members.fire("click");
  await until(() => log().includes("1 connected to defaultRoom"), "roomView");
  console.log(JSON.stringify({ ok: true, state: elements.state.textContent, log: log(),
                               status: JSON.parse(elements.output.textContent) }));
  process.exit(0);
})();
