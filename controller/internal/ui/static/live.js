// Live progress over /api/ws: subscribes to one session, resumes with
// `since` after every drop, and tells the page whether it is connected.

import { token } from "./api.js";

export class Live {
  // onEvent(ev) for each operation event, onState("live"|"reconnecting").
  constructor(sessionId, { onEvent, onState }) {
    this.sessionId = sessionId;
    this.onEvent = onEvent;
    this.onState = onState;
    this.last = 0;
    this.closed = false;
    this.attempt = 0;
    this.connect();
  }

  connect() {
    if (this.closed) return;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/api/ws?access_token=${encodeURIComponent(token.get())}`);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      ws.send(JSON.stringify({ type: "subscribe", sessionId: this.sessionId, since: this.last }));
    };
    ws.onmessage = (msg) => {
      // A frame carries one event, or several, one per line.
      for (const line of String(msg.data).split("\n")) {
        if (!line) continue;
        let ev;
        try { ev = JSON.parse(line); } catch { continue; }
        if (ev.type === "subscribed") { this.onState("live"); continue; }
        if (ev.type === "resync") { ws.close(); continue; }
        if (!["progress", "completed", "failed"].includes(ev.type)) continue;
        if (ev.seq && ev.seq <= this.last) continue;
        this.last = Math.max(this.last, ev.seq || 0);
        this.onEvent(ev);
      }
    };
    ws.onclose = () => {
      if (this.closed) return;
      this.onState("reconnecting");
      this.attempt++;
      const delay = Math.min(500 * 2 ** this.attempt, 5000) * (0.5 + Math.random() / 2);
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close();
  }
}

export function newSessionId() {
  const b = new Uint8Array(8);
  crypto.getRandomValues(b);
  return "ui-" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
