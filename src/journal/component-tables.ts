/*
 * Tables other components keep in the journal's file (so their writes share its durability and
 * its commit transactions). The journal owns their definitions because its salvage carries them
 * over from a set-aside file (auto-salvage.ts): `CARRIED_TABLES` lists them.
 */

/*
 * The downlink's tables in the journal's SQLite file (same WAL, same durability):
 * - downlink_commands: one row per command id per downlink, kept after it finished (for
 *   keep_done_s / keep_done_max) so a redelivered or re-produced id is recognised. `result`:
 *   0 = no outcome yet, 1 = outcome decided, result record not yet journaled, 2 = journaled (set in
 *   the journal's commit transaction that wrote the result record: exactly one result per command).
 * - downlink_outgoing: MQTT.js's outgoing store for the downlink's clients, keyed by packet id:
 *   the PUBLISH (later the PUBREL) of a command in flight, written before the packet is sent.
 */
export const DOWNLINK_TABLES = `
  CREATE TABLE IF NOT EXISTS downlink_commands (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    downlink TEXT NOT NULL,
    id TEXT NOT NULL,
    target TEXT,
    payload BLOB,
    received REAL NOT NULL,
    deadline REAL,
    origin TEXT,
    state TEXT NOT NULL,
    outcome TEXT,
    reason TEXT,
    done_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    result INTEGER NOT NULL DEFAULT 0,
    UNIQUE (downlink, id)
  );
  CREATE INDEX IF NOT EXISTS downlink_waiting ON downlink_commands (downlink, state, target, n);
  CREATE INDEX IF NOT EXISTS downlink_results ON downlink_commands (downlink, result);
  CREATE TABLE IF NOT EXISTS downlink_outgoing (
    client TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    n INTEGER NOT NULL,
    packet BLOB NOT NULL,
    PRIMARY KEY (client, message_id)
  ) WITHOUT ROWID;
`;

/** Tables a salvage copies from a set-aside journal, row by row as readable (INSERT OR IGNORE). */
export const CARRIED_TABLES = ['downlink_commands', 'downlink_outgoing'] as const;
