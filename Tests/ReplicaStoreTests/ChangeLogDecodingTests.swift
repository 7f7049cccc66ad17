import FieldbookModel
import Foundation
import GRDB
@testable import ReplicaStore
import SyncCore
import Testing

/// Issue 26, item 1: the change log is read back from the file, so every length, integer and
/// offset in a chunk is checked before it is used. A damaged chunk is `.damaged` — never a trap,
/// and never a silent end that a cursor would pass for good.
@Suite struct ChangeLogDecodingTests {
    static func chunk(_ entries: [LogEntry]) -> [UInt8] {
        var out: [UInt8] = []
        for e in entries { ChangeLog.append(e, to: &out) }
        return out
    }

    static let valid = chunk([
        LogEntry(table: 3, rowID: "0b1c2d3e-0000-4000-8000-000000000001", op: 1, cl: 1, hlc: 1_700_000_000_000 << 16, site: 1,
                 fields: 0b1011, payload: [1, 2, 3, 4, 5], origin: 0),
        LogEntry(table: 4, rowID: "second", op: 2, cl: 2, hlc: -5, site: 7, fields: 0, payload: [], origin: 9),
    ])

    static func decode(_ bytes: [UInt8]) throws -> [LogEntry] {
        var out: [LogEntry] = []
        try bytes.withUnsafeBytes { b in
            try ChangeLog.forEach(in: b, seq: 42, wantPayload: { _, _ in true }) { out.append($0) }
        }
        return out
    }

    static func varint(_ v: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        ChangeLog.appendVarint(v, to: &out)
        return out
    }

    @Test func aValidChunkDecodesAsWritten() throws {
        let entries = try Self.decode(Self.valid)
        #expect(entries.count == 2 && entries[0].payload == [1, 2, 3, 4, 5] && entries[1].hlc == -5 && entries[1].origin == 9)
    }

    /// Lengths and integers at their extremes — 2^63 and more, `UInt64.max`, a length that runs
    /// one byte past the end, a table index or site out of range, an over-long varint, an entry
    /// cut anywhere — are each `.damaged`, naming the chunk.
    @Test func everyLengthAndIntegerAtItsExtremesIsDamageNotATrap() throws {
        let id = Array("r".utf8)
        func entry(table: [UInt8] = Self.varint(1), len: [UInt8] = Self.varint(1), site: [UInt8] = Self.varint(2), plen: [UInt8] = Self.varint(0)) -> [UInt8] {
            table + len + id + [1] + Self.varint(2) + Self.varint(4) + site + Self.varint(1) + plen + Self.varint(0)
        }
        let cases: [(String, [UInt8])] = [
            ("id length 2^63", entry(len: Self.varint(1 << 63))),
            ("id length UInt64.max", entry(len: Self.varint(.max))),
            ("id length one past the end", entry(len: Self.varint(UInt64(entry().count)))),
            ("payload length 2^63 + 5", entry(plen: Self.varint((1 << 63) + 5))),
            ("payload length Int.max", entry(plen: Self.varint(UInt64(Int.max)))),
            ("payload length one past the end", entry(plen: Self.varint(1))),
            ("table index 2^63", entry(table: Self.varint(1 << 63))),
            ("site index beyond Int32", entry(site: Self.varint(ChangeLog.zigzag(Int64(Int32.max) + 1)))),
            ("an eleven-byte varint", entry(table: [UInt8](repeating: 0xFF, count: 10) + [0x01])),
            ("a varint of 2^64", entry(table: [UInt8](repeating: 0xFF, count: 9) + [0x02])),
        ]
        for (what, bytes) in cases {
            do {
                _ = try Self.decode(bytes)
                Issue.record("\(what): decoded")
            } catch let e as ReplicaError {
                #expect(e.kind == .damaged && e.message.contains("chunk 42"), "\(what): \(e.message)")
            }
        }
        // Cut at every byte inside an entry: damage, never a shorter list taken for the whole.
        // (Cut between two entries, a chunk is a valid chunk of fewer entries: the chunk's blob
        // length, which SQLite keeps, is what says where it ends.)
        let boundary = Self.chunk([try Self.decode(Self.valid)[0]]).count
        for cut in 1..<Self.valid.count where cut != boundary {
            #expect(throws: ReplicaError.self, "cut at \(cut)") { try Self.decode(Array(Self.valid.prefix(cut))) }
        }
    }

    /// 20,000 seeded mutations of a valid chunk (bytes flipped, replaced by extremes, cut,
    /// inserted) never trap: each decodes, or is `.damaged`. The seed is printed on failure;
    /// `FB_LOG_SEED` replays.
    @Test func mutatedChunksNeverTrap() throws {
        let seed = ProcessInfo.processInfo.environment["FB_LOG_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 0...UInt64.max)
        var rng = SplitMix64(seed: seed)
        for i in 0..<20_000 {
            var b = Self.valid
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let at = Int(rng.next() % UInt64(max(1, b.count)))
                switch rng.next() % 5 {
                case 0: if at < b.count { b[at] ^= UInt8(truncatingIfNeeded: rng.next() | 1) }
                case 1: if at < b.count { b[at] = [0x00, 0x7F, 0x80, 0xFF][Int(rng.next() % 4)] }
                case 2: b = Array(b.prefix(at))
                case 3: b.insert(contentsOf: [UInt8](repeating: 0xFF, count: 1 + Int(rng.next() % 10)), at: min(at, b.count))
                default: b.insert(UInt8(truncatingIfNeeded: rng.next()), at: min(at, b.count))
                }
            }
            do { _ = try Self.decode(b) } catch let e as ReplicaError {
                if e.kind != .damaged { Issue.record("mutation \(i) of seed \(seed) (FB_LOG_SEED=\(seed)): \(e.kind) \(e.message)") }
            }
        }
    }

    /// End to end: a replica whose change log holds a crafted chunk (a length of 2^63) refuses
    /// `history` and "changes since" with `.damaged`; it does not die.
    @Test func aCraftedChunkInTheFileIsDamageForHistoryAndSync() throws {
        let t = try TestReplicas()
        let r = try t.make("a", tables: [plainTable])
        try r.write { w in try w.insert("note", id: "r1", values: ["a": .text("x")]) }
        let crafted = Self.varint(1) + Self.varint(1 << 63) + Array("r1".utf8)
        try r.writeDatabase { db in try db.execute(sql: "UPDATE _fb_log SET body = ?", arguments: [Data(crafted)]) }
        #expect { _ = try r.history(table: "note", id: "r1") } throws: { ($0 as? ReplicaError)?.kind == .damaged }
        #expect { _ = try r.changes(since: 0) } throws: { ($0 as? ReplicaError)?.kind == .damaged }
    }
}
