import FieldbookModel
import FieldbookTestSupport
import Foundation
import PostgresNIO
@testable import PostgresStore
import SyncCore
import SyncServer
import Testing

/// The store's prepared statements against a table that grows under them.
extension PostgresScaleOutTests {
    /// A fresh database's statements are first planned while `fb_row` and `fb_log` hold a few
    /// rows, when scanning a whole table is cheaper than its index. PostgreSQL keeps a prepared
    /// statement's generic plan once it has chosen one, so with its default `plan_cache_mode`
    /// every push and pull went on scanning the whole table as it grew (until the next `ANALYZE`).
    /// Here one connection pushes and pulls on small tables — before and after they are analysed
    /// small (so plans made then know them small) —, the tables then grow by 30,000 rows each
    /// (autovacuum off, so no `ANALYZE` comes in between), and the next push and pull on the
    /// same connection must read neither table sequentially (`pg_stat_user_tables`, flushed by
    /// the connection itself). With `plan_cache_mode=auto` it fails: 270,120 rows read with the
    /// joins of before (without the `ANALYZE` step), 180,156 with each key looked up on its own.
    @Test(.enabled(if: TestStore.adminURL != nil, TestStore.postgresSkipReason)) func statementsPlannedOnASmallTableUseTheirIndexOnceItHasGrown() async throws {
        try await TestExecutor.run {
            let url = try TestStore.createDatabase() + "?max_connections=1"
            let client = try PostgresDatabase(url: url).makeClient(logger: Self.logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                defer { group.cancelAll() }
                await PostgresDatabase.started()
                let store = try await PostgresServerStore.open(client: client, logger: Self.logger)
                try await store.beginEpoch()
                try await client.query("ALTER TABLE fb_row SET (autovacuum_enabled = false)", logger: Self.logger)
                try await client.query("ALTER TABLE fb_log SET (autovacuum_enabled = false)", logger: Self.logger)
                try await client.query("INSERT INTO srv_region_epoch (region, epoch) VALUES ('almaty', 1)", logger: Self.logger)
                let token = TokenInfo(name: "almaty-team", regions: ["almaty"], coordinator: false, createdAt: "now")
                let site = SiteID.random()
                var position: Int64 = 0
                var cursor: StoreCursor? = nil
                var ids: [String] = []
                /// A push of a new person and an edit of the one before (rows inserted, updated,
                /// locked, checked), then a pull.
                func sync() async throws {
                    let id = newID()
                    var tables = [personRow(id, region: "almaty", name: "Person \(position)")]
                    if let last = ids.last { tables.append(personRow(last, region: nil, name: "edit \(position)")) }
                    ids.append(id)
                    let batch = PushBatch(site: site, from: position, to: position + 1,
                                          changes: TestSealing.seal(Changeset(sites: [site], tables: tables)), quarantined: [])
                    _ = try await store.push(batch, token: token)
                    position += 1
                    var more = true
                    while more {
                        let page = try await store.pull(after: cursor, limit: 100, token: token, requester: site, lineage: .absent)
                        cursor = page.cursor
                        more = page.more
                    }
                }
                func sequentialReads() async throws -> [String: Int64] {
                    try await client.query("SELECT pg_stat_force_next_flush()", logger: Self.logger)
                    var out: [String: Int64] = [:]
                    let rows = try await client.query("SELECT relname::text, seq_tup_read FROM pg_stat_user_tables WHERE relname IN ('fb_row', 'fb_log')",
                                                      logger: Self.logger)
                    for try await (name, n) in rows.decode((String, Int64).self) { out[name] = n }
                    return out
                }
                for _ in 0..<12 { try await sync() }   // past PostgreSQL's five custom plans per statement
                try await client.query("ANALYZE fb_row, fb_log, fb_site, srv_quarantine", logger: Self.logger)   // statistics of the small tables
                for _ in 0..<12 { try await sync() }
                try await client.query("""
                    INSERT INTO fb_row (tbl, id, region, parent, cl, hlc, site, cells)
                    SELECT 'person', 'grown-' || i, 'elsewhere', NULL, 1, 1, gen_random_uuid(), '\\x'::bytea FROM generate_series(1, 30000) AS i
                    """, logger: Self.logger)
                try await client.query("""
                    INSERT INTO fb_log (tbl, id, region, origin, change)
                    SELECT 'person', 'grown-' || i, 'elsewhere', NULL, '\\x'::bytea FROM generate_series(1, 30000) AS i
                    """, logger: Self.logger)
                let before = try await sequentialReads()
                for _ in 0..<3 { try await sync() }
                let after = try await sequentialReads()
                for table in ["fb_row", "fb_log"] {
                    let read = (after[table] ?? 0) - (before[table] ?? 0)
                    #expect(read < 1_000, "\(table): three pushes and pulls read \(read) rows sequentially out of 30,000+")
                }
            }
        }
    }
}
