/// The PostgreSQL store's tables, created and upgraded by `fieldbook-server migrate` (and by
/// `serve` on a database that lacks them). Versions are applied in order, each in its own
/// transaction, and recorded in `fb_migration`.
///
/// - `fb_row`: every record the server holds or held: its clear region and parent, causal length
///   and the version that set it, and its cells (JSON: column, sealed value, clock, site index).
/// - `fb_log`: the changes as applied, for pulls, stamped with the writing transaction's id
///   (`xid8`) — the pull cursor is (xid, seq) and a pull reads only below the oldest transaction
///   still running, so a change that commits late is never skipped (docs/PROTOCOL.md).
/// - `fb_site`: site ids by index, with their (sealed) device names.
/// - `srv_*`: tokens (hashes), site positions, lineage and `fb_site` index, quarantine, epochs, devices, wrapped
///   keys, region key epochs, rosters — what the embedded store keeps, the same way.
enum PostgresSchema {
    static let migrations: [(name: String, sql: [String])] = [
        ("fieldbook v1", [
            "CREATE TABLE IF NOT EXISTS fb_meta (key text PRIMARY KEY, value text NOT NULL)",
            "CREATE TABLE IF NOT EXISTS fb_site (idx serial PRIMARY KEY, site uuid NOT NULL UNIQUE, name text)",
            """
            CREATE TABLE IF NOT EXISTS fb_row (
                tbl text NOT NULL, id text NOT NULL, region text, parent text,
                cl bigint NOT NULL, hlc bigint NOT NULL, site uuid NOT NULL, cells bytea NOT NULL,
                PRIMARY KEY (tbl, id))
            """,
            """
            CREATE TABLE IF NOT EXISTS fb_log (
                xid xid8 NOT NULL DEFAULT pg_current_xact_id(), seq bigserial NOT NULL,
                tbl text NOT NULL, id text NOT NULL, region text, origin integer, change bytea NOT NULL,
                PRIMARY KEY (xid, seq))
            """,
            """
            CREATE TABLE IF NOT EXISTS srv_token (
                name text PRIMARY KEY, hash bytea NOT NULL UNIQUE, regions text NOT NULL, coordinator boolean NOT NULL,
                created_at text NOT NULL, revoked_at text)
            """,
            """
            CREATE TABLE IF NOT EXISTS srv_site (
                site text PRIMARY KEY, position bigint NOT NULL, token text, lineage text, lineage_prev text)
            """,
            """
            CREATE TABLE IF NOT EXISTS srv_quarantine (
                id bigserial PRIMARY KEY, received_at text NOT NULL, site text NOT NULL, token text NOT NULL, tbl text NOT NULL,
                row_id text NOT NULL, reason text NOT NULL, change text NOT NULL, newest bigint NOT NULL, error text)
            """,
            """
            CREATE TABLE IF NOT EXISTS srv_epoch (
                n bigserial PRIMARY KEY, epoch bigint NOT NULL UNIQUE, start_xid xid8 NOT NULL, start_seq bigint NOT NULL,
                started_at text NOT NULL)
            """,
            """
            CREATE TABLE IF NOT EXISTS srv_device (
                token text PRIMARY KEY, agreement bytea NOT NULL, signing bytea NOT NULL, state text NOT NULL,
                registered_at text NOT NULL, decided_by text, decided_at text)
            """,
            """
            CREATE TABLE IF NOT EXISTS srv_key (
                device text NOT NULL, region text NOT NULL, epoch bigint NOT NULL, wrapped bytea NOT NULL, sender text NOT NULL,
                sender_agreement bytea NOT NULL, sender_signing bytea NOT NULL, created_at text NOT NULL,
                PRIMARY KEY (device, region, epoch))
            """,
            "CREATE TABLE IF NOT EXISTS srv_region_epoch (region text PRIMARY KEY, epoch bigint NOT NULL)",
            "CREATE TABLE IF NOT EXISTS srv_roster (sender text PRIMARY KEY, roster bytea NOT NULL, updated_at text NOT NULL)",
        ]),
        // Fewer reads per request: a site's `fb_site` index kept with its position (filled on
        // its next push), a region's pull found by index, a push's held rows by key.
        ("fieldbook v2", [
            "ALTER TABLE srv_site ADD COLUMN IF NOT EXISTS origin integer",
            "CREATE INDEX IF NOT EXISTS fb_log_region ON fb_log (region, xid, seq)",
            "CREATE INDEX IF NOT EXISTS srv_quarantine_row ON srv_quarantine (tbl, row_id)",
        ]),
    ]
}
