// The host page of the real-SDK tests: it plays the anywidget model (traits, custom messages) for the stage, which
// it imports as the widget serves it (perceived.js and stage.js in one module).
import stage from "/widget.mjs";

const params = new URLSearchParams(location.search);
const provider = params.get("provider");
const sent = (window.__sent = []); // every message stage.js sends to Python: {content, t, buffers (as text)}

class Model {
  constructor(state) {
    this.state = state;
    this.handlers = new Map();
  }
  get(name) {
    return this.state[name];
  }
  set(name, value) {
    const changed = this.state[name] !== value;
    this.state[name] = value;
    if (changed) this.emit(`change:${name}`);
  }
  save_changes() {}
  on(event, handler) {
    if (!this.handlers.has(event)) this.handlers.set(event, new Set());
    this.handlers.get(event).add(handler);
  }
  off(event, handler) {
    this.handlers.get(event)?.delete(handler);
  }
  emit(event, ...args) {
    for (const handler of this.handlers.get(event) || []) handler(...args);
  }
  send(content, _callbacks, buffers) {
    const decoded = (buffers || []).map((b) => new TextDecoder().decode(b));
    sent.push({ content: JSON.parse(JSON.stringify(content)), t: performance.now(), buffers: decoded });
    if (content.type === "join-request") {
      // Python answers with the room's credentials, as the Stage widget does (a one-shot custom message).
      const reply = { type: "credentials", page_id: content.page_id, provider, credentials: window.__credentials };
      setTimeout(() => this.emit("msg:custom", reply, []), 0);
    }
  }
  // What Python's BrowserTransport sends: {"type": "send", "seq": n, "page_id": p} + [bytes].
  fromPython(content, buffers = []) {
    this.emit("msg:custom", content, buffers);
  }
}

const model = new Model({
  _stage_id: "stage-1",
  provider,
  simulated: false,
  note: "",
  connection_state: "idle",
  join_timeout: Number(params.get("join_timeout") || 20),
  speaking: false,
  caption: "",
  error: "",
  error_kind: "",
  notice: "",
  audio_blocked: false,
  mic_state: "off",
  mic_devices: [],
  mic_device: "",
  network: {},
  sdk_url_tried: "",
  sdk_urls: { [provider]: params.get("sdk") },
  background_url: "",
  budget: JSON.parse(params.get("budget") || "{}"),
  page_id: "",
  session_id: "sess-1",
});
window.__model = model;
window.__failures = () => sent.filter((m) => m.content.type === "failed").map((m) => m.content);
// perceived.js's raw events (type, at...), as the stage batches them to Python.
window.__perceived = (type) =>
  sent.filter((m) => m.content.type === "perceived").flatMap((m) => m.content.events).filter((e) => !type || e.type === type);
window.__events = (name) => sent.filter((m) => m.content.type === "event" && (!name || m.content.name === name)).map((m) => m.content);
stage.initialize({ model });
stage.render({ model, el: document.getElementById("stage") });
window.__ready = true;
