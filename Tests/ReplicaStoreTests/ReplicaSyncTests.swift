import FieldbookModel
import Foundation
import ReplicaStore
import SyncCore
import Testing

@Suite struct ReplicaSyncTests {
    @Test func changesSinceCursorSendOnlyTheDeltaInBatches() throws {
        let t = try TestReplicas()
        let a = try t.make("a", tables: [plainTable]), b = try t.make("b", tables: [plainTable])
        // 50 transactions: 50 log chunks; a batch reads whole chunks until it has `limit` entries.
        for i in 0..<50 { try a.write { w in try w.insert("note", id: "n\(i)", values: ["a": .text("\(i)")]) } }
        var cursor: Int64 = 0
        var batches = 0
        while true {
            let batch = try a.changes(since: cursor, limit: 7)
            _ = try b.apply(batch.changeset)
            cursor = batch.cursor
            batches += 1
            if !batch.hasMore { break }
        }
        #expect(batches == 8)
        #expect(try a.state("note") == b.state("note"))
        for _ in 0..<1000 { try a.write { w in try w.update("note", id: "n3", values: ["b": .text("edit")]) } }
        let delta = try a.changes(since: cursor, limit: 10_000)
        #expect(delta.changeset.changeCount == 1)  // edited 1,000 times, sent once
        #expect(try b.apply(delta.changeset) == ApplyReport(applied: 1, ignored: 0))
        #expect(try b.apply(delta.changeset) == ApplyReport(applied: 0, ignored: 1))
    }

    @Test func olderFullRowArrivingAgainMergesInsteadOfOverwriting() throws {
        // A changeset that carries every field of a row is inserted without a read when the row
        // is new; when the row exists (newer edit) or was deleted, it must go through the merge.
        let t = try TestReplicas()
        let a = try t.make("a", tables: [plainTable]), b = try t.make("b", tables: [plainTable])
        try a.write { w in
            try w.insert("note", id: "kept", values: ["a": .text("a0"), "b": .text("b0"), "c": .text("c0")])
            try w.insert("note", id: "gone", values: ["a": .text("x"), "b": .text("y"), "c": .text("z")])
        }
        let full = try a.changes(since: 0).changeset
        #expect(try b.apply(full) == ApplyReport(applied: 6, ignored: 0))
        t.now.advance(10)
        try b.write { w in
            try w.update("note", id: "kept", values: ["b": .text("newer")])
            try w.delete("note", id: "gone")
        }
        #expect(try b.apply(full) == ApplyReport(applied: 0, ignored: 6))
        #expect(try b.state("note") == ["kept": ["a": .text("a0"), "b": .text("newer"), "c": .text("c0")]])
    }

    @Test func historyKeepsOverwrittenAndLostValues() throws {
        let t = try TestReplicas()
        let a = try t.make("a", tables: [plainTable]), b = try t.make("b", tables: [plainTable])
        try a.write { w in try w.insert("note", id: "n", values: ["a": .text("first")]) }
        _ = try b.apply(a.changes(since: 0).changeset)
        t.now.advance(10)
        try a.write { w in try w.update("note", id: "n", values: ["a": .text("second")]) }
        t.now.advance(10)
        try b.write { w in try w.update("note", id: "n", values: ["a": .text("newest")]) }
        t.now.advance(10)
        try a.write { w in try w.update("note", id: "n", values: ["b": .text("other field")]) }
        _ = try b.apply(a.changes(since: 0).changeset)  // a's "second" loses to b's "newest"
        _ = try a.apply(b.changes(since: 0).changeset)
        #expect(try a.state("note") == b.state("note"))
        let h = try b.history(table: "note", id: "n").filter { $0.field == "a" }
        #expect(h.map(\.value) == [.text("first"), .text("second"), .text("newest")])
        #expect(h.map(\.isCurrent) == [false, false, true])
        #expect(h[1].kind == .lost)
        let ha = try a.history(table: "note", id: "n").filter { $0.field == "a" }
        #expect(ha.map(\.value) == [.text("first"), .text("second"), .text("newest")])
        #expect(ha.last?.isCurrent == true)
    }

    @Test func deleteAndRecreateShowInHistory() throws {
        let t = try TestReplicas()
        let a = try t.make("a", tables: [plainTable])
        try a.write { w in try w.insert("note", id: "n", values: ["a": .text("1")]) }
        try a.write { w in try w.delete("note", id: "n") }
        try a.write { w in try w.insert("note", id: "n", values: ["a": .text("2")]) }
        let kinds = try a.history(table: "note", id: "n").map(\.kind)
        #expect(kinds.contains(.deleted) && kinds.contains(.recreated))
        #expect(try a.state("note")["n"]?["a"] == .text("2"))
    }

    /// The SQLite store follows the same rules as the reference replica: random schedules on
    /// three replicas, full changesets exchanged in random order, identical tables.
    @Test func sqliteReplicasConvergeOnRandomSchedules() throws {
        for seed in UInt64(1)...60 {
            var rng = SplitMix64(seed: seed)
            let t = try TestReplicas()
            let reps = try (0..<3).map { try t.make("r\($0)", tables: [plainTable]) }
            for _ in 0..<25 {
                t.now.advance(Int64(rng.next() % 2))
                let r = reps[Int(rng.next() % 3)]
                if rng.next() % 4 == 0 {
                    let other = reps[Int(rng.next() % 3)]
                    _ = try r.apply(other.changes(since: 0).changeset)
                }
                let id = "n\(rng.next() % 3)"
                let alive = try r.state("note")[id] != nil
                let col = ["a", "b", "c"][Int(rng.next() % 3)]
                try r.write { w in
                    if !alive { try w.insert("note", id: id, values: [col: .text("v\(rng.next() % 5)")]) }
                    else if rng.next() % 4 == 0 { try w.delete("note", id: id) }
                    else { try w.update("note", id: id, values: [col: .text("v\(rng.next() % 5)")]) }
                }
            }
            var order = [0, 1, 2, 0, 1, 2, 2, 1, 0].shuffled(using: &rng)
            order += [0, 1, 2]
            for i in order { for j in 0..<3 where i != j { _ = try reps[j].apply(reps[i].changes(since: 0).changeset) } }
            let s0 = try reps[0].state("note")
            #expect(try reps[1].state("note") == s0, "seed \(seed)")
            #expect(try reps[2].state("note") == s0, "seed \(seed)")
        }
    }
}
