import FieldbookModel
import Foundation
import GRDB
import ReplicaStore
import SyncCore
import Testing

@Suite struct ReplicaTransactionTests {
    @Test func failedLocalWriteLeavesNothingBehind() throws {
        let t = try TestReplicas()
        let r = try t.make("a", tables: [plainTable])
        try r.write { w in try w.insert("note", id: "n1", values: ["a": .text("kept")]) }
        let before = try r.lastSequence()
        #expect(throws: ReplicaError.self) {
            try r.write { w in
                try w.insert("note", id: "n2", values: ["a": .text("x")])
                try w.update("note", id: "n1", values: ["b": .text("y")])
                try w.update("note", id: "missing", values: ["a": .text("z")])  // fails: nothing of this block stays
            }
        }
        #expect(try r.state("note") == ["n1": ["a": .text("kept"), "b": .null, "c": .null]])
        #expect(try r.lastSequence() == before)
    }

    @Test func invalidRemoteChangesetIsRefusedWhole() throws {
        let t = try TestReplicas()
        let a = try t.make("a"), b = try t.make("b")
        let pid = UUID().uuidString.lowercased()
        try a.write { w in
            try w.insert("person", id: pid, values: ["region": .text("almaty"), "name": .text("Asqar Qaiyrbek")])
            try w.insert("incident", id: UUID().uuidString.lowercased(), values: [
                "region": .text("almaty"), "person_id": .text(pid), "kind": .text("detention"), "date": .text("2020-09")])
        }
        var cs = try a.changes(since: 0).changeset
        let i = cs.tables.firstIndex { $0.table == "incident" }!
        let dateField = cs.tables[i].fields.firstIndex(of: "date")!
        let k = cs.tables[i].rows[0].fields.firstIndex { $0.field == dateField }!
        cs.tables[i].rows[0].fields[k].value = .text("2020-02-30")
        #expect(throws: ReplicaError.self) { try b.apply(cs) }
        #expect(try b.state("person").isEmpty)
        #expect(try b.lastSequence() == 0)
    }

    @Test func singleFieldEditsOfSeveralTablesInAnyOrderUseTheirOwnStatements() throws {
        // Statements for single-field edits are kept per table and column; a later table first,
        // then an earlier one, then another column, must each reach its own row.
        let t = try TestReplicas()
        let other = TableSchema(name: "other", columns: [ColumnSchema("x"), ColumnSchema("y"), ColumnSchema("z"), ColumnSchema("w")])
        let r = try t.make("a", tables: [plainTable, other])
        try r.write { w in
            try w.insert("note", id: "n1", values: ["a": .text("a0")])
            try w.insert("other", id: "o1", values: ["x": .text("x0")])
        }
        try r.write { w in
            try w.update("other", id: "o1", values: ["w": .text("w1")])
            try w.update("note", id: "n1", values: ["c": .text("c1")])
            try w.update("note", id: "n1", values: ["a": .text("a1")])
            try w.update("other", id: "o1", values: ["x": .text("x1")])
        }
        #expect(try r.state("note") == ["n1": ["a": .text("a1"), "b": .null, "c": .text("c1")]])
        #expect(try r.state("other") == ["o1": ["x": .text("x1"), "y": .null, "z": .null, "w": .text("w1")]])
    }

    @Test func remoteClockFarAheadRefusesTheChangeset() throws {
        let t = try TestReplicas()
        let a = try t.make("a", tables: [plainTable]), b = try t.make("b", tables: [plainTable])
        t.now.advance(60 * 60 * 1000)  // a's writes are an hour ahead of what b will believe
        try a.write { w in try w.insert("note", id: "n", values: ["a": .text("x")]) }
        let cs = try a.changes(since: 0).changeset
        let late = try Replica.open(path: b.path, tables: [plainTable],
                                    configuration: ReplicaConfiguration(clock: { 1_700_000_000_000 }))
        #expect { try late.apply(cs) } throws: { ($0 as? ReplicaError)?.kind == .clock }
        #expect(try late.state("note").isEmpty)
    }

    @Test func immutableRegionCannotBeChangedLocallyOrRemotely() throws {
        let t = try TestReplicas()
        let a = try t.make("a"), b = try t.make("b")
        let pid = UUID().uuidString.lowercased()
        try a.write { w in try w.insert("person", id: pid, values: ["region": .text("almaty"), "name": .text("x")]) }
        #expect(throws: ReplicaError.self) { try a.write { w in try w.update("person", id: pid, values: ["region": .text("atyrau")]) } }
        _ = try b.apply(a.changes(since: 0).changeset)
        var cs = try a.changes(since: 0).changeset
        cs.tables[0].rows[0].fields = cs.tables[0].rows[0].fields.map { f in
            var f = f
            if cs.tables[0].fields[f.field] == "region" { f.value = .text("atyrau"); f.hlc += 1 << 20 }
            return f
        }
        #expect(throws: ReplicaError.self) { try b.apply(cs) }
    }

    @Test func replicaIsAPlainSQLiteFile() throws {
        let t = try TestReplicas()
        let r = try t.make("a")
        let pid = UUID().uuidString.lowercased()
        try r.write { w in try w.insert("person", id: pid, values: ["region": .text("almaty"), "name": .text("Асқар"), "born": .text("1976/1977")]) }
        let q = try DatabaseQueue(path: r.path)
        let name = try q.read { db in try String.fetchOne(db, sql: "SELECT name FROM person WHERE id = ?", arguments: [pid]) }
        #expect(name == "Асқар")
        let tables = try q.read { db in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name") }
        for expected in ["person", "alias", "incident", "charge", "source", "_fb_log", "_fb_replica", "grdb_migrations"] {
            #expect(tables.contains(expected))
        }
    }

    @Test func createRefusesToOverwrite() throws {
        let t = try TestReplicas()
        let r = try t.make("a")
        #expect { _ = try Replica.create(path: r.path, tables: FieldbookSchema.tables, region: "x") } throws: {
            ($0 as? ReplicaError)?.kind == .alreadyInitialized
        }
    }
}

@Suite struct ReplicaConcurrencyTests {
    /// Two connections on one file (as the CLI and a sync run in two processes would be): each
    /// writer must notice the other's commits (log positions, sites, clock).
    @Test func twoConnectionsWritingOneFileStayConsistent() throws {
        let t = try TestReplicas()
        let first = try t.make("a", tables: [plainTable])
        let second = try Replica.open(path: first.path, tables: [plainTable],
                                      configuration: ReplicaConfiguration(clock: { t.now.millis }))
        let remote = try t.make("remote", tables: [plainTable])
        try remote.write { w in try w.insert("note", id: "r", values: ["a": .text("from elsewhere")]) }
        for i in 0..<20 {
            let r = i % 2 == 0 ? first : second
            try r.write { w in try w.insert("note", id: "n\(i)", values: ["a": .text("\(i)")]) }
            if i == 7 { _ = try r.apply(remote.changes(since: 0).changeset) }
        }
        try first.write { w in try w.update("note", id: "r", values: ["b": .text("edited locally")]) }
        #expect(try first.state("note").count == 21)
        #expect(try second.state("note") == first.state("note"))
        #expect(try first.lastSequence() == 22)  // one log chunk per transaction, none overwritten
        let copy = try t.make("copy", tables: [plainTable])
        _ = try copy.apply(second.changes(since: 0).changeset)
        #expect(try copy.state("note") == first.state("note"))
        // The remote row's other field still carries the remote site, and the local edit the local one.
        let h = try first.history(table: "note", id: "r")
        #expect(Set(h.filter(\.isCurrent).map(\.site)).count == 2)
    }
}

/// Writers on several threads at once (the server applies pushes on a thread pool): each
/// transaction starts from the state the previous one committed, never an older one.
@Suite struct ConcurrentWriterTests {
    @Test func concurrentWriteTransactionsNeverReuseALogSequence() async throws {
        let t = try TestReplicas()
        let r = try t.make("r", tables: [plainTable])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for thread in 0..<4 {
                group.addTask {
                    for i in 0..<300 {
                        try r.write { w in try w.insert("note", id: "n\(thread)-\(i)", values: ["a": .text("\(i)")]) }
                    }
                }
            }
            try await group.waitForAll()
        }
        let (chunks, distinct, rows) = try r.read { db in
            (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM _fb_log")!, try Int.fetchOne(db, sql: "SELECT COUNT(DISTINCT seq) FROM _fb_log")!,
             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM note")!)
        }
        #expect(rows == 1_200 && chunks == 1_200 && distinct == 1_200)
    }
}
