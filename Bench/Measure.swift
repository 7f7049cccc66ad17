import Crypto
import Foundation
import GRDB

/// Timing and hashing helpers.
enum Measure {
    static func millis(_ body: () throws -> Void) rethrows -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
    }

    /// Copies the WAL into the database file (the next transaction then writes the WAL from its
    /// start), so that a measured transaction does not pay for copying the pages an earlier phase
    /// wrote: the automatic checkpoint runs in the commit that takes the WAL past 1,000 pages.
    static func checkpoint(_ q: DatabaseQueue) throws {
        try q.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(RESTART)") }
    }

    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.isEmpty ? 0 : s[s.count / 2]
    }

    /// sha256 over the rows ordered by id: fields joined by 0x1F, each row ended by 0x1E.
    static func stateHash(_ db: Database, table: String, columns: [String]) throws -> String {
        var h = SHA256()
        let cols = (["id"] + columns).map { "\"\($0)\"" }.joined(separator: ", ")
        let rows = try Row.fetchCursor(db, sql: "SELECT \(cols) FROM \"\(table)\" ORDER BY id")
        while let r = try rows.next() {
            var parts: [String] = []
            for i in 0..<r.count {
                let v: DatabaseValue = r[i]
                switch v.storage {
                case .null: parts.append("")
                case .string(let s): parts.append(s)
                case .int64(let x): parts.append(String(x))
                case .double(let x): parts.append(String(x))
                case .blob(let b): parts.append(String(decoding: b, as: UTF8.self))
                }
            }
            h.update(data: Data((parts.joined(separator: "\u{1F}") + "\u{1E}").utf8))
        }
        return h.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// The size of `data` compressed with gzip level 6 (the system's gzip).
    static func gzipSize(_ data: Data) -> Int {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("fb-bench-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: url) }
        guard (try? data.write(to: url)) != nil else { return -1 }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "gzip -6 -c '\(url.path)' | wc -c"]
        let pipe = Pipe()
        p.standardOutput = pipe
        guard (try? p.run()) != nil else { return -1 }
        p.waitUntilExit()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return Int(out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    /// Database file plus WAL, after a checkpoint.
    static func fileSize(_ path: String) -> Int {
        let fm = FileManager.default
        return ["", "-wal"].reduce(0) { acc, s in
            acc + ((try? fm.attributesOfItem(atPath: path + s)[.size] as? Int) ?? 0)
        }
    }
}
