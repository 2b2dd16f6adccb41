// Changes not yet acknowledged by the server, kept in localStorage per room and person, so a
// reload, a closed tab or a sleeping laptop loses nothing. Conflict copies are kept the same way.

export class Outbox {
  constructor(key) {
    this.key = key;
    this.entries = new Map(); // target -> {target, client_id, payload, base_version, sent, sentOnce, next, failed}
    this.conflicts = new Map(); // target -> {target, mine, reason, message}
    // What this tab settled or dropped since it last wrote: removed from storage on the next
    // write only if storage still holds that very change (another tab may have a newer one).
    this.removedEntries = new Map(); // target -> client_id
    this.removedConflicts = new Set();
    this.load();
  }

  read() {
    try {
      const raw = JSON.parse(localStorage.getItem(this.key) || "{}");
      return { entries: raw.entries || [], conflicts: raw.conflicts || [] };
    } catch (err) {
      return { entries: [], conflicts: [] }; // a corrupt store is ignored rather than blocking the page
    }
  }

  load() {
    const stored = this.read();
    for (const entry of stored.entries) this.entries.set(entry.target, { ...entry, sent: false });
    for (const conflict of stored.conflicts) this.conflicts.set(conflict.target, conflict);
  }

  deleteEntry(target) {
    const entry = this.entries.get(target);
    if (entry) this.removedEntries.set(target, entry.client_id);
    this.entries.delete(target);
  }

  deleteConflict(target) {
    this.removedConflicts.add(target);
    this.conflicts.delete(target);
  }

  persist() {
    // Merge with what other tabs of the same person stored, so two tabs never erase each
    // other's unsent changes (a tab may close without warning).
    const stored = this.read();
    const entries = new Map(stored.entries.map((e) => [e.target, e]));
    for (const [target, clientId] of this.removedEntries) {
      if (entries.has(target) && entries.get(target).client_id === clientId) entries.delete(target);
    }
    for (const [target, entry] of this.entries) entries.set(target, entry);
    const conflicts = new Map(stored.conflicts.map((c) => [c.target, c]));
    for (const target of this.removedConflicts) conflicts.delete(target);
    for (const [target, conflict] of this.conflicts) conflicts.set(target, conflict);
    this.removedEntries.clear();
    this.removedConflicts.clear();
    try {
      if (entries.size || conflicts.size) {
        localStorage.setItem(this.key, JSON.stringify({ entries: [...entries.values()], conflicts: [...conflicts.values()] }));
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

// Messages that carry their own client_id and add something new (a rebuttal, a research note):
// kept in localStorage from the moment they are sent until the server acknowledges or refuses
// them, and sent again after a reconnect or a reload (the server answers a client_id it already
// stored with a duplicate ack, never a second row). Another tab of the same person may keep its
// own: writes merge with what storage holds, as the Outbox's do.
export class KeptMessages {
  constructor(key) {
    this.key = key;
    this.messages = new Map(); // client_id -> message (plus `refused`: the server's reason, once refused)
    this.removed = new Set(); // client ids this tab settled since it last wrote
    this.changed = new Set(); // client ids this tab added or changed since it last wrote
    for (const [clientId, message] of Object.entries(this.read())) this.messages.set(clientId, message);
  }

  read() {
    try {
      const raw = JSON.parse(localStorage.getItem(this.key) || "{}");
      return raw && typeof raw === "object" && !Array.isArray(raw) ? raw : {};
    } catch (err) {
      return {}; // a corrupt store is ignored rather than blocking the page
    }
  }

  add(message) {
    this.messages.set(message.client_id, message);
    this.changed.add(message.client_id);
    this.persist();
  }

  remove(clientId) {
    if (!this.messages.delete(clientId)) return;
    this.removed.add(clientId);
    this.changed.delete(clientId);
    this.persist();
  }

  get(clientId) {
    return this.messages.get(clientId);
  }

  has(clientId) {
    return this.messages.has(clientId);
  }

  values() {
    return [...this.messages.values()];
  }

  // Kept and still to be delivered (refused ones wait only for the person to read them).
  unsentCount() {
    let count = 0;
    for (const message of this.messages.values()) if (!message.refused) count += 1;
    return count;
  }

  persist() {
    // Only what this tab changed is written: a message another tab settled since this one
    // loaded it stays settled (this tab drops it when the server or a snapshot says so).
    const stored = this.read();
    for (const clientId of this.removed) delete stored[clientId];
    for (const clientId of this.changed) stored[clientId] = this.messages.get(clientId);
    this.removed.clear();
    this.changed.clear();
    try {
      if (Object.keys(stored).length) localStorage.setItem(this.key, JSON.stringify(stored));
      else localStorage.removeItem(this.key); // nothing kept: leave no trace on the device
    } catch (err) {
      // Storage full or disabled: the message still goes out over the socket when it can.
    }
  }
}
