import FieldbookModel
import SyncCore
import Testing

/// Random schedules on ≥ 3 replicas: inserts, edits, deletes and re-creations, then every
/// changeset delivered to every replica in a random order with duplicates. Every replica must
/// end in the same state. The seed of a failing schedule is printed; replay it with `run(seed:)`.
@Suite struct ConvergencePropertyTests {
    static let tables = ["person": ["name", "born", "sex"], "incident": ["kind", "date"]]

    /// One schedule; returns nil when it converged, else a description.
    static func run(seed: UInt64) throws -> String? {
        var rng = SplitMix64(seed: seed)
        let n = 3 + Int(rng.next() % 3)
        var replicas = (0..<n).map { i in
            MemoryReplica(site: SiteID("00000000-0000-0000-0000-0000000000\(String(format: "%02x", i))")!)
        }
        var sent: [Changeset] = []
        var now: Int64 = 1_000
        let ids = ["r0", "r1", "r2", "r3"]
        let steps = 4 + Int(rng.next() % 12)
        for _ in 0..<steps {
            now += Int64(rng.next() % 3)  // often the same millisecond: counters and site ties matter
            let r = Int(rng.next() % UInt64(n))
            // Sometimes a replica first receives a random part of what was sent so far.
            if !sent.isEmpty && rng.next() % 3 == 0 {
                let cs = sent[Int(rng.next() % UInt64(sent.count))]
                _ = try replicas[r].apply(cs, at: now)
            }
            let table = rng.next() % 2 == 0 ? "person" : "incident"
            let fields = tables[table]!
            let id = ids[Int(rng.next() % UInt64(ids.count))]
            let row = replicas[r].rows[table]?[id]
            var values: [String: Value] = [:]
            for f in fields where rng.next() % 2 == 0 { values[f] = rng.next() % 5 == 0 ? .null : .text("v\(rng.next() % 4)") }
            if row?.isAlive == true {
                if rng.next() % 4 == 0 {
                    sent.append(try replicas[r].delete(table: table, id: id, at: now))
                } else if !values.isEmpty {
                    sent.append(try replicas[r].update(table: table, id: id, fields: values, at: now))
                }
            } else {
                var all: [String: Value] = [:]
                for f in fields { all[f] = values[f] ?? .null }
                sent.append(try replicas[r].insert(table: table, id: id, fields: all, at: now))
            }
        }
        // Deliver everything to everyone, shuffled, with duplicates.
        for i in 0..<n {
            var delivery = sent + sent.filter { _ in rng.next() % 3 == 0 }
            delivery.shuffle(using: &rng)
            for cs in delivery { _ = try replicas[i].apply(cs, at: now + 1) }
        }
        let first = replicas[0].state
        for i in 1..<n where replicas[i].state != first {
            return "replica 0: \(first)\nreplica \(i): \(replicas[i].state)"
        }
        // A full-state exchange changes nothing more (idempotence of the converged state).
        var r0 = replicas[0]
        let report = try r0.apply(replicas[1].fullChangeset(), at: now + 2)
        if report.applied != 0 { return "full exchange after convergence applied \(report.applied) changes" }
        return nil
    }

    @Test func tenThousandRandomSchedulesConverge() throws {
        let base: UInt64 = 20_261_121
        for k in 0..<10_000 {
            let seed = base &+ UInt64(k)
            if let failure = try Self.run(seed: seed) {
                Issue.record("schedule with seed \(seed) diverged:\n\(failure)")
                return
            }
        }
    }

    @Test func mergeIsCommutativeAssociativeAndIdempotent() throws {
        var rng = SplitMix64(seed: 99)
        for _ in 0..<500 {
            var src = [MemoryReplica(site: .random()), MemoryReplica(site: .random()), MemoryReplica(site: .random())]
            var cs: [Changeset] = []
            for (i, _) in src.enumerated() {
                cs.append(try src[i].insert(table: "person", id: "p", fields: ["name": .text("n\(i)")], at: Int64(1_000 + rng.next() % 3)))
                if rng.next() % 2 == 0 { cs.append(try src[i].delete(table: "person", id: "p", at: 1_010)) }
            }
            var orders: [[Changeset]] = [cs, cs.reversed(), cs.shuffled(using: &rng), cs + cs]
            orders.append([MemoryReplica.concatenate(cs[0], cs[cs.count - 1])] + cs)
            var states: [[String: [String: [String: Value]]]] = []
            for o in orders {
                var r = MemoryReplica(site: .random())
                for c in o { _ = try r.apply(c, at: 2_000) }
                states.append(r.state)
            }
            #expect(Set(states.map { "\($0)" }).count == 1)
        }
    }
}
