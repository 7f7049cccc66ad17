import FieldbookModel
import FieldbookTestSupport
import Foundation
import PostgresNIO
@testable import PostgresStore
import SyncCore
@testable import SyncServer
import Testing

/// The optimistic push's write (`CheckedWriteStatement`) against each way what it read can change.
extension PostgresScaleOutTests {
    /// An optimistic push reads without locks and writes in one statement only if what it read
    /// still holds. Each way what it read can change makes that write write nothing — no row,
    /// no log entry, no position: the row rewritten by another push, the site's row moved by
    /// another push of the same site, a change of the row held and committed before the write,
    /// and one held by a transaction still running when the write began (it finds a new row
    /// version once that commits) — and read again, it writes.
    @Test(.enabled(if: TestStore.adminURL != nil, TestStore.postgresSkipReason)) func anOptimisticWriteWritesNothingOnceWhatItReadHasChanged() async throws {
        try await TestExecutor.run {
            let client = try PostgresDatabase(url: try TestStore.createDatabase()).makeClient(logger: Self.logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                defer { group.cancelAll() }
                await PostgresDatabase.started()
                let store = try await PostgresServerStore.open(client: client, logger: Self.logger)
                let site = SiteID.random()
                try await client.query("INSERT INTO srv_site (site, position, token, origin) VALUES (\(site.description), 1, 'hq', 1)", logger: Self.logger)
                try await client.query(PostgresQuery(unsafeSQL: Self.logEntry("r1")), logger: Self.logger)
                let token = TokenInfo(name: "hq", regions: ["*"], coordinator: true, createdAt: "now")
                var position: Int64 = 1
                var edits = 0
                func count(_ sql: String) async throws -> Int64 {
                    for try await n in try await client.query(PostgresQuery(unsafeSQL: sql), logger: Self.logger).decode(Int64.self) { return n }
                    return -1
                }
                /// Reads as an optimistic push does, lets `meanwhile` change things, then writes.
                func attempt(_ meanwhile: () async throws -> Void) async throws -> Bool {
                    edits += 1
                    let cs = Changeset(sites: [site], tables: [personRow("r1", region: nil, name: "edit \(edits)", millis: nowMillis() + Int64(edits))])
                    let read = try await client.withConnection { conn in try await store.facts(for: [cs], site: site.description, locking: false, conn) }
                    try await meanwhile()
                    let writes = try RowWrites.merging(cs, into: read.locked)
                    #expect(writes.updates.count == 1 && writes.log.count == 1)
                    let advance = SiteAdvance(site: site.description, position: position + 1, token: token.name, lineage: nil)
                    let statement = CheckedWriteStatement(writes, origin: 1, site: advance, read: read.versions,
                                                          siteVersion: read.siteVersion ?? "", named: Array(read.named))
                    let logged = try await count("SELECT count(*) FROM fb_log")
                    var wrote = false
                    for try await ok in try await client.withConnection({ conn in try await conn.execute(statement, logger: Self.logger) }) { wrote = ok }
                    let after = (try await count("SELECT count(*) FROM fb_log"), try await count("SELECT position FROM srv_site WHERE site = '\(site)'"))
                    if wrote {
                        position += 1
                        #expect(after == (logged + 1, position))
                    } else {
                        #expect(after == (logged, position), "a write that found a change wrote nothing")
                    }
                    return wrote
                }
                #expect(try await attempt {}, "nothing changed: written")
                #expect(try await !attempt { try await client.query("UPDATE fb_row SET cells = cells WHERE id = 'r1'", logger: Self.logger) },
                        "the row rewritten by another writer")
                #expect(try await !attempt { try await client.query("UPDATE srv_site SET position = position WHERE site = \(site.description)", logger: Self.logger) },
                        "the site's row moved by another push of the same site")
                let held = HeldChange(note: QuarantineNote(table: "person", id: "r1", reason: "test"),
                                      row: Changeset(sites: [site], tables: [personRow("r1", region: nil, name: "held")]), newestMillis: nowMillis())
                #expect(try await !attempt {
                    try await client.withTransaction(logger: Self.logger) { conn in try await store.hold([held], site: site, token: token, conn) }
                }, "a change of the row held before the write")
                try await client.query("DELETE FROM srv_quarantine", logger: Self.logger)
                #expect(try await !attempt {
                    try await client.query("""
                        INSERT INTO srv_quarantine (received_at, site, token, tbl, row_id, reason, change, newest)
                        VALUES ('now', \(site.description), 'hq', 'person', 'r1', 'test', '{}', 0)
                        """, logger: Self.logger)
                }, "a quarantine entry for the row, even without a new row version")
                try await client.query("DELETE FROM srv_quarantine", logger: Self.logger)
                #expect(try await attempt {}, "read again: written")

                // Held by a transaction that holds the row's lock while the write begins (the write's
                // snapshot does not show the quarantine entry; the row's new version does): it
                // commits only once the write waits for the row's lock.
                let (ready, signal) = AsyncStream<Void>.makeStream()
                let holder = TestExecutor.task {
                    try await client.withConnection { conn in
                        try await conn.query("BEGIN", logger: Self.logger)
                        try await conn.query("SELECT 1 FROM fb_row WHERE id = 'r1' FOR UPDATE", logger: Self.logger)
                        try await store.hold([held], site: site, token: token, conn)
                        signal.yield()
                        let deadline = ContinuousClock.now + .seconds(20)
                        while ContinuousClock.now < deadline {
                            var waiting: Int64 = 0
                            // On another connection: within a transaction, pg_stat_activity is read once.
                            for try await n in try await client.query("""
                                SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
                                """, logger: Self.logger).decode(Int64.self) { waiting = n }
                            if waiting > 0 { break }
                            try await Task.sleep(for: .milliseconds(20))
                        }
                        try await conn.query("COMMIT", logger: Self.logger)
                    }
                }
                #expect(try await !attempt { for await _ in ready { break } }, "a change held by a transaction running when the write began")
                try await holder.value
            }
        }
    }
}
