import FieldbookModel
import Foundation
import GRDB
import ReplicaStore
import SyncCore

/// The figures of one run of one workload.
struct Figures {
    var plainInsertMs = 0.0, fbInsertMs = 0.0
    var plainUpdateMs = 0.0, fbUpdateMs = 0.0
    /// The checkpoint right after the update phase: copying what it wrote into the database file.
    var plainCheckpointMs = 0.0, fbCheckpointMs = 0.0
    var plainLoadMs = 0.0, fbApplyMs = 0.0
    var extractMs = 0.0, encodeMs = 0.0, decodeMs = 0.0
    var rawBytes = 0, gzipBytes = 0, jsonRawBytes = 0, jsonGzipBytes = 0
    var round2Ms = 0.0, round2Bytes = 0
    var plainFile = 0, replicaFile = 0
    var hashA = "", hashB = "", hashPlain = ""
    /// The same work on encrypted replicas (`EncryptedPhase`).
    var encrypted = EncryptedPhase.Figures()
}

/// Runs a workload against plain SQLite (GRDB, no tracking) and against Fieldbook replicas, in one process.
struct Runner {
    let workload: Workload
    let dir: URL

    func run() throws -> Figures {
        var f = Figures()
        let w = workload
        let cols = w.schema.columnNames
        let quotedCols = cols.map { "\"\($0)\"" }
        let fm = FileManager.default
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: dir) }

        // Plain SQLite: the same table, no tracking.
        var config = Configuration()
        config.journalMode = .wal
        // The same page cache as a replica's (ReplicaConfiguration.cacheKiB), so both are measured alike.
        let cacheKiB = ReplicaConfiguration().cacheKiB
        let pageSize = ReplicaConfiguration().pageSize
        let autocheckpoint = ReplicaConfiguration().walAutocheckpointPages
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA page_size = \(pageSize)")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(autocheckpoint)")
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            try db.execute(sql: "PRAGMA cache_size = -\(cacheKiB)")
        }
        let plainPath = dir.appendingPathComponent("plain.sqlite").path
        let plain = try DatabaseQueue(path: plainPath, configuration: config)
        let create = "CREATE TABLE \"\(w.schema.name)\" (id TEXT PRIMARY KEY NOT NULL, \(quotedCols.map { "\($0) TEXT" }.joined(separator: ", ")))"
        try plain.write { db in try db.execute(sql: create) }
        let insertSQL = "INSERT INTO \"\(w.schema.name)\" (id, \(quotedCols.joined(separator: ","))) VALUES (\(Array(repeating: "?", count: cols.count + 1).joined(separator: ",")))"
        f.plainInsertMs = try Measure.millis {
            try plain.write { db in
                let s = try RawStatement(db, sql: insertSQL)
                for (i, r) in w.records.enumerated() {
                    s.bind(1, w.ids[i])
                    for (k, v) in r.enumerated() { s.bind(Int32(k + 2), v) }
                    try s.run()
                }
            }
        }
        try Measure.checkpoint(plain)
        f.plainUpdateMs = try Measure.millis {
            try plain.write { db in
                let statements = try quotedCols.map { try RawStatement(db, sql: "UPDATE \"\(w.schema.name)\" SET \($0) = ? WHERE id = ?") }
                for u in w.updates {
                    let s = statements[u.column]
                    s.bind(1, u.value)
                    s.bind(2, w.ids[u.row])
                    try s.run()
                }
            }
        }
        f.plainCheckpointMs = try Measure.millis { try Measure.checkpoint(plain) }
        let plainRows: [[Value]] = try plain.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM \"\(w.schema.name)\"").map { r in r.databaseValues.map { Value.fromDatabaseValue($0) ?? .null } }
        }
        let plainPath2 = dir.appendingPathComponent("plain2.sqlite").path
        let plain2 = try DatabaseQueue(path: plainPath2, configuration: config)
        try plain2.write { db in try db.execute(sql: create) }
        f.plainLoadMs = try Measure.millis {
            try plain2.write { db in
                let s = try RawStatement(db, sql: insertSQL)
                for r in plainRows {
                    for (k, v) in r.enumerated() { s.bind(Int32(k + 1), v) }
                    try s.run()
                }
            }
        }
        try plain.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        f.plainFile = Measure.fileSize(plainPath)

        // Fieldbook replicas A and B.
        let cfg = ReplicaConfiguration()
        let a = try Replica.create(path: dir.appendingPathComponent("a.sqlite").path, tables: [w.schema], region: "bench",
                                   configuration: cfg, synchronous: .normal)
        let b = try Replica.create(path: dir.appendingPathComponent("b.sqlite").path, tables: [w.schema], region: "bench",
                                   configuration: cfg, synchronous: .normal)
        let h = try a.handle(w.schema.name)
        f.fbInsertMs = try Measure.millis {
            try a.write { tx in
                for (i, r) in w.records.enumerated() { try tx.insert(h, id: w.ids[i], values: r) }
            }
        }
        var bodyMs = 0.0
        try Measure.checkpoint(a.dbQueue)
        f.fbUpdateMs = try Measure.millis {
            try a.write { tx in
                bodyMs = try Measure.millis {
                    for u in w.updates { try tx.update(h, id: w.ids[u.row], column: u.column, value: u.value) }
                }
            }
        }
        f.fbCheckpointMs = try Measure.millis { try Measure.checkpoint(a.dbQueue) }
        if let n = ProcessInfo.processInfo.environment["FB_BENCH_PROFILE_UPDATES"].flatMap(Int.init) {
            for _ in 0..<n {
                try a.write { tx in for u in w.updates { try tx.update(h, id: w.ids[u.row], column: u.column, value: u.value) } }
            }
            exit(0)
        }
        if ProcessInfo.processInfo.environment["FB_BENCH_DETAIL"] != nil {
            FileHandle.standardError.write(Data("update body \(bodyMs) ms, total \(f.fbUpdateMs) ms\n".utf8))
        }

        // Round 1: everything since 0.
        var batch: ChangeBatch!
        f.extractMs = try Measure.millis { batch = try a.changes(since: 0, limit: Int.max) }
        // The binary form is what `fieldbook sync` sends; the JSON form's sizes are reported too.
        var data: [UInt8] = []
        f.encodeMs = try Measure.millis { data = WireChangeset(batch.changeset).binary() }
        f.rawBytes = data.count
        f.gzipBytes = Measure.gzipSize(Data(data))
        let json = try JSONEncoder().encode(WireChangeset(batch.changeset))
        f.jsonRawBytes = json.count
        f.jsonGzipBytes = Measure.gzipSize(json)
        if let dump = ProcessInfo.processInfo.environment["FB_BENCH_DUMP"] { try json.write(to: URL(fileURLWithPath: dump + "-\(w.schema.columns.count).json")) }
        var decoded: Changeset!
        f.decodeMs = try Measure.millis { decoded = try WireChangeset(binary: data).changeset() }
        f.fbApplyMs = try Measure.millis { _ = try b.apply(decoded) }
        if let n = ProcessInfo.processInfo.environment["FB_BENCH_PROFILE_APPLY"].flatMap(Int.init) {
            for k in 0..<n {
                let r = try Replica.create(path: dir.appendingPathComponent("p\(k).sqlite").path, tables: [w.schema], region: "bench",
                                           configuration: cfg, synchronous: .normal)
                _ = try r.apply(decoded)
            }
            exit(0)
        }

        // Round 2: 100 more updates, then only the delta.
        let cursor = batch.cursor
        try a.write { tx in
            for u in w.round2 { try tx.update(h, id: w.ids[u.row], column: u.column, value: u.value) }
        }
        try plain.write { db in
            for u in w.round2 {
                try db.execute(sql: "UPDATE \"\(w.schema.name)\" SET \(quotedCols[u.column]) = ? WHERE id = ?", arguments: [u.value, w.ids[u.row]])
            }
        }
        var parts: [Double] = []
        f.round2Ms = try Measure.millis {
            var delta: ChangeBatch!
            var bytes: [UInt8] = []
            var cs: Changeset!
            parts.append(try Measure.millis { delta = try a.changes(since: cursor, limit: Int.max) })
            parts.append(try Measure.millis { bytes = WireChangeset(delta.changeset).binary() })
            f.round2Bytes = bytes.count
            parts.append(try Measure.millis { cs = try WireChangeset(binary: bytes).changeset() })
            var inner = 0.0
            parts.append(try Measure.millis { try b.write { w in inner = try Measure.millis { _ = try w.apply(cs) } } })
            parts.append(inner)
        }
        if ProcessInfo.processInfo.environment["FB_BENCH_DETAIL"] != nil {
            FileHandle.standardError.write(Data("round 2: extract / encode / decode / apply = \(parts) ms\n".utf8))
        }

        if let n = ProcessInfo.processInfo.environment["FB_BENCH_PROFILE_ROUND2"].flatMap(Int.init) {
            var c = try a.lastSequence()
            for k in 0..<n {
                try a.write { tx in for u in w.round2 { try tx.update(h, id: w.ids[(u.row + k) % w.ids.count], column: u.column, value: u.value) } }
                let delta = try a.changes(since: c, limit: Int.max)
                c = delta.cursor
                let bytes = WireChangeset(delta.changeset).binary()
                _ = try b.apply(try WireChangeset(binary: bytes).changeset())
            }
            exit(0)
        }
        f.hashPlain = try plain.read { db in try Measure.stateHash(db, table: w.schema.name, columns: cols) }
        f.hashA = try a.read { db in try Measure.stateHash(db, table: w.schema.name, columns: cols) }
        f.hashB = try b.read { db in try Measure.stateHash(db, table: w.schema.name, columns: cols) }
        try a.dbQueue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        f.replicaFile = Measure.fileSize(a.path)
        f.encrypted = try EncryptedPhase(workload: w, dir: dir).run()
        return f
    }
}
