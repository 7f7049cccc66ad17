@preconcurrency import Crypto
import FieldbookModel
import SyncCore
import Foundation
import Logging
import ReplicaStore
import SealedSync
import SyncClient

/// The sync benchmark: a real `fieldbook-server` process on 127.0.0.1, replicas synced through
/// the real `fieldbook` binary (memory) and through the sync engine in process (latency).
struct SyncBench {
    let dir: URL
    let binDir: URL

    struct Result {
        var pushPerSecond = 0.0, pullPerSecond = 0.0, e2ePerSecond = 0.0
        var changes = 0
        var rawBytesPerChange = 0.0, gzipBytesPerChange = 0.0, jsonRawBytesPerChange = 0.0, jsonGzipBytesPerChange = 0.0
        var incremental10kMs = 0.0, incremental1mMs = 0.0
        var clientPeakMB = 0.0, serverPeakMB = 0.0
        var pull1mSeconds = 0.0
    }

    /// A running server process and its pid, for memory readings.
    final class Server {
        let process = Process()
        var port = 0
        var url: String { "http://127.0.0.1:\(port)" }

        init(binary: URL, data: String) throws {
            process.executableURL = binary
            process.arguments = ["serve", "--data", data, "--host", "127.0.0.1", "--port", "0", "--log-level", "error"]
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            try process.run()
            var buf = Data()
            while !String(decoding: buf, as: UTF8.self).contains("\n") {
                let d = out.fileHandleForReading.availableData
                if d.isEmpty { break }
                buf.append(d)
            }
            let line = String(decoding: buf, as: UTF8.self).split(separator: "\n").first ?? ""
            port = Int(line.split(separator: ":").last ?? "") ?? 0
        }

        func stop() {
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
        }
    }

    /// VmHWM (peak resident memory) of a process, in MiB.
    static func peakMB(_ pid: Int32) -> Double {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kb / 1024
    }

    /// Runs `fieldbook ARGS`, returning its wall time and peak memory (polled from /proc while it runs).
    func runCLI(_ args: [String]) throws -> (seconds: Double, peakMB: Double) {
        let p = Process()
        p.executableURL = binDir.appendingPathComponent("fieldbook")
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        let err = Pipe()
        p.standardError = err
        let t0 = Date()
        try p.run()
        var peak = 0.0
        while p.isRunning {
            peak = max(peak, Self.peakMB(p.processIdentifier))
            usleep(2_000)
        }
        let elapsed = Date().timeIntervalSince(t0)
        guard p.terminationStatus == 0 else {
            throw NSError(domain: "bench", code: 1, userInfo: [NSLocalizedDescriptionKey:
                "fieldbook \(args.joined(separator: " ")) failed: \(String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))"])
        }
        return (elapsed, peak)
    }

    func token(_ data: String, _ name: String) throws -> String {
        let p = Process()
        p.executableURL = binDir.appendingPathComponent("fieldbook-server")
        p.arguments = ["token", "create", "--data", data, "--name", name, "--regions", "*", "--coordinator"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        p.waitUntilExit()
        return String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A replica with `incidents` incidents (16 fields each) of 500 persons (7 fields each).
    func makeReplica(_ name: String, incidents: Int, seed: UInt64) throws -> Replica {
        let r = try Replica.create(path: dir.appendingPathComponent("\(name).sqlite").path, tables: FieldbookSchema.tables,
                                   region: "almaty", synchronous: .normal)
        var rng = SplitMix64(seed: seed)
        let w = Workload.incidents()
        let persons = (0..<500).map { i in String(format: "%08x-0000-4000-8000-%012x", seed, i) }
        try r.write { tx in
            for (i, p) in persons.enumerated() {
                try tx.insert("person", id: p, values: ["region": .text("almaty"), "name": .text("Person \(i)"), "born": .text("1980")])
            }
        }
        let h = try r.handle("incident")
        var done = 0
        while done < incidents {
            try r.write { tx in
                for i in done..<min(done + 20_000, incidents) {
                    var values = w.records[i % w.records.count]
                    values[1] = .text(persons[Int(rng.next() % 500)])
                    values[15] = .text("\(name)-\(i)")
                    try tx.insert(h, id: String(format: "%08x-1111-4000-8000-%012x", seed, i), values: values)
                }
            }
            done = min(done + 20_000, incidents)
        }
        return r
    }

    /// The region key every bench replica holds (as a coordinator's would): their coordinator
    /// tokens let them approve themselves on their first sync.
    static let regionKey = SymmetricKey(size: .bits256)

    /// Adds `remote` to a replica file (the remotes table is the client's), and the region key.
    func addRemote(_ replica: Replica, _ url: String, _ token: String) throws {
        try Remotes.add(replica, name: "hq", url: url, token: token)
        try replica.writeDatabase { db in
            try KeyStore.add(db, region: "almaty", epoch: 1, key: Self.regionKey, sender: nil, senderFingerprint: "bench")
        }
    }

    /// One sync of `replica` with the engine, in process; returns milliseconds.
    func syncInProcess(_ replica: Replica) async throws -> Double {
        let remote = try Remotes.named(replica, "hq")
        let client = SyncTransport.makeClient()
        defer { Task { try? await client.shutdown() } }
        let engine = SyncEngine(replica: replica, remote: remote, transport: SyncTransport(baseURL: remote.url, token: remote.token, client: client),
                                logger: Logger(label: "bench"))
        let t0 = DispatchTime.now().uptimeNanoseconds
        _ = try await engine.run()
        let ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
        try await client.shutdown()
        return ms
    }

    /// Time to push 100 new changes from A and pull them on B, with `stored` changes on the server.
    func incremental(stored incidents: Int, result: inout Result, measureBigPull: Bool) async throws -> Double {
        let data = dir.appendingPathComponent("server-\(incidents)").path
        let server = try Server(binary: binDir.appendingPathComponent("fieldbook-server"), data: data)
        defer { server.stop() }
        let a = try makeReplica("inc-a-\(incidents)", incidents: incidents, seed: 7)
        try addRemote(a, server.url, try token(data, "a"))
        _ = try runCLI(["sync", "--db", a.path])
        let b = try Replica.create(path: dir.appendingPathComponent("inc-b-\(incidents)").path + ".sqlite", tables: FieldbookSchema.tables,
                                   region: "almaty", synchronous: .normal)
        try addRemote(b, server.url, try token(data, "b"))
        let pull = try runCLI(["sync", "--db", b.path])
        if measureBigPull {
            result.clientPeakMB = max(result.clientPeakMB, pull.peakMB)
            result.serverPeakMB = max(result.serverPeakMB, Self.peakMB(server.process.processIdentifier))
            result.pull1mSeconds = pull.seconds
        }
        var times: [Double] = []
        let h = try a.handle("incident")
        for round in 0..<31 {
            try a.write { tx in
                for j in 0..<100 { try tx.update(h, id: String(format: "%08x-1111-4000-8000-%012x", 7, (round * 100 + j) * 37 % incidents), column: 13, value: .text("round \(round) edit \(j)")) }
            }
            let push = try await syncInProcess(a)
            let pull = try await syncInProcess(b)
            times.append(push + pull)
            if ProcessInfo.processInfo.environment["FB_BENCH_DETAIL"] != nil {
                FileHandle.standardError.write(Data(String(format: "stored %d: push %.2f ms, pull %.2f ms\n", incidents * 16, push, pull).utf8))
            }
        }
        return times.sorted()[times.count / 2]
    }

    func run() async throws -> Result {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var result = Result()

        // 100,000 field changes end to end: 6,250 incidents × 16 fields (plus 500 persons × 3).
        let data = dir.appendingPathComponent("server-e2e").path
        let server = try Server(binary: binDir.appendingPathComponent("fieldbook-server"), data: data)
        let a = try makeReplica("e2e-a", incidents: 6_250, seed: 1)
        let clear = try a.changes(since: 0, limit: Int.max).changeset
        result.changes = clear.changeCount
        // What travels: every value sealed, as `fieldbook sync` sends it.
        var ring = KeyRing()
        ring.add(region: "almaty", epoch: 1, key: Self.regionKey)
        let all = try ChangesetSealer.seal(clear, keys: ring) { _, _ in "almaty" }
        // What `fieldbook sync` sends (the binary form), and the JSON form for comparison.
        let binary = Data(WireChangeset(all).binary())
        result.rawBytesPerChange = Double(binary.count) / Double(all.changeCount)
        result.gzipBytesPerChange = Double(Measure.gzipSize(binary)) / Double(all.changeCount)
        let json = try JSONEncoder().encode(WireChangeset(all))
        result.jsonRawBytesPerChange = Double(json.count) / Double(all.changeCount)
        result.jsonGzipBytesPerChange = Double(Measure.gzipSize(json)) / Double(all.changeCount)
        try addRemote(a, server.url, try token(data, "a"))
        let push = try runCLI(["sync", "--db", a.path])
        let b = try Replica.create(path: dir.appendingPathComponent("e2e-b.sqlite").path, tables: FieldbookSchema.tables, region: "almaty")
        try addRemote(b, server.url, try token(data, "b"))
        let pull = try runCLI(["sync", "--db", b.path])
        result.pushPerSecond = Double(result.changes) / push.seconds
        result.pullPerSecond = Double(result.changes) / pull.seconds
        result.e2ePerSecond = Double(result.changes) / (push.seconds + pull.seconds)
        result.clientPeakMB = max(push.peakMB, pull.peakMB)
        result.serverPeakMB = Self.peakMB(server.process.processIdentifier)
        server.stop()

        // Incremental sync of 100 changes with 10,000 and 1,000,000 field changes stored.
        result.incremental10kMs = try await incremental(stored: 625, result: &result, measureBigPull: false)
        result.incremental1mMs = try await incremental(stored: 62_500, result: &result, measureBigPull: true)
        return result
    }
}
