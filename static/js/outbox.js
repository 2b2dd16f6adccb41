// Changes not yet acknowledged by the server, kept in localStorage per room and person, so a
// reload, a closed tab or a sleeping laptop loses nothing. Conflict copies are kept the same way.

export class Outbox {
  constructor(key) {
    this.key = key;
    this.entries = new Map(); // target -> {target, client_id, payload, base_version, sent, next, failed}
    this.conflicts = new Map(); // target -> {target, mine, theirs, version, reason}
    this.load();
  }

  load() {
    try {
      const raw = JSON.parse(localStorage.getItem(this.key) || "{}");
      for (const entry of raw.entries || []) this.entries.set(entry.target, { ...entry, sent: false });
      for (const conflict of raw.conflicts || []) this.conflicts.set(conflict.target, conflict);
    } catch (err) {
      // A corrupt store is ignored rather than blocking the page.
    }
  }

  persist() {
    const data = { entries: [...this.entries.values()], conflicts: [...this.conflicts.values()] };
    try {
      if (data.entries.length || data.conflicts.length) {
        localStorage.setItem(this.key, JSON.stringify(data));
      } else {
        localStorage.removeItem(this.key);
      }
    } catch (err) {
      // Storage full or disabled: the change still goes out over the socket when it can.
    }
  }

  get(target) {
    return this.entries.get(target);
  }

  byClientId(clientId) {
    for (const entry of this.entries.values()) if (entry.client_id === clientId) return entry;
    return undefined;
  }

  pendingCount() {
    return this.entries.size;
  }
}
