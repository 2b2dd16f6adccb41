// The room socket with reconnection (backoff 1 s, 2 s, then every 4 s for the first dozen tries,
// then 30 s; +/-30 % jitter) and a heartbeat that notices a dead connection within 30 s.
// See docs/protocol.md, section 10.

const FATAL_CLOSE_CODES = new Map([
  [4401, "not_participant"],
  [4403, "removed"],
  [4404, "room_not_found"],
]);
const HEARTBEAT_MS = 10000; // ping after this much silence
const PING_EVERY_MS = 25000; // and at least this often, so the server sees the member as present
const DEAD_AFTER_MS = 30000;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;
// A server restart takes a few seconds: the first tries stay at most 4 s apart, so a page is
// back within about 5 s of the server (about 45 s of tries), and only then slows to 30 s.
const BACKOFF_FAST_MS = 4000;
const BACKOFF_FAST_ATTEMPTS = 12;

export function backoffDelay(attempt, random = Math.random) {
  const cap = attempt < BACKOFF_FAST_ATTEMPTS ? BACKOFF_FAST_MS : BACKOFF_MAX_MS;
  const base = Math.min(cap, BACKOFF_MIN_MS * 2 ** attempt);
  const jitter = 1 + (random() * 0.6 - 0.3);
  return Math.round(base * jitter);
}

export class RoomSocket {
  constructor({ path, onOpen, onMessage, onStateChange, onFatal }) {
    this.path = path;
    this.onOpen = onOpen;
    this.onMessage = onMessage;
    this.onStateChange = onStateChange;
    this.onFatal = onFatal;
    this.ws = null;
    this.state = "connecting";
    this.attempt = 0;
    this.retryTimer = null;
    this.lastHeard = 0;
    this.lastPing = 0;
    this.stopped = false;
    this.heartbeat = setInterval(() => this.checkHeartbeat(), HEARTBEAT_MS / 2);
    window.addEventListener("online", () => this.reconnectNow());
    window.addEventListener("offline", () => this.ws && this.ws.close());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.reconnectNow();
    });
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    return `${scheme}://${location.host}${this.path}`;
  }

  start() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.setState("connecting");
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch (err) {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (this.ws !== ws) return;
      this.lastHeard = Date.now();
      this.setState("open");
      this.onOpen();
    });
    ws.addEventListener("message", (event) => {
      if (this.ws !== ws) return;
      this.lastHeard = Date.now();
      this.attempt = 0;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      this.onMessage(message);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      const fatal = FATAL_CLOSE_CODES.get(event.code);
      if (fatal) {
        this.stopped = true;
        this.setState("stopped");
        this.onFatal(fatal, event.code);
        return;
      }
      this.setState("offline");
      this.scheduleRetry();
    });
  }

  scheduleRetry() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    this.retryTimer = setTimeout(() => this.start(), delay);
  }

  reconnectNow() {
    if (this.stopped || (this.ws && this.ws.readyState <= WebSocket.OPEN)) return;
    this.attempt = 0;
    this.start();
  }

  checkHeartbeat() {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - this.lastHeard > DEAD_AFTER_MS) {
      // No message (not even a pong) for 30 s: the connection is dead even if the browser
      // has not noticed. Drop it and reconnect.
      const ws = this.ws;
      this.ws = null;
      ws.close();
      this.setState("offline");
      this.scheduleRetry();
      return;
    }
    const now = Date.now();
    if (now - this.lastHeard > HEARTBEAT_MS || now - this.lastPing > PING_EVERY_MS) {
      this.lastPing = now;
      this.send({ type: "ping" });
    }
  }

  send(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  isOpen() {
    return this.state === "open";
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.onStateChange(state);
  }
}
