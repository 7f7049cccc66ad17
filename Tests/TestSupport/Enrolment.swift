import Foundation

/// Sealed sync in tests, done as people do it: each device registers on its first sync, a
/// coordinator's replica creates the region keys, reads each device's fingerprint (as a monitor
/// would read it out) and approves it. One coordinator replica per server, made on first use.
extension ServerProcess {
    public struct EnrolmentError: Error, CustomStringConvertible {
        public var description: String
    }

    /// The coordinator replica that approves devices: one per test directory, with a remote
    /// for each server (so that, as in the field, one coordinator holds every region's keys).
    public static func coordinatorDB(_ cli: CLIRunner) -> String { cli.dir.appendingPathComponent("test-coordinator.sqlite").path }

    /// The coordinator replica's remote name for this server.
    var coordinatorRemote: String {
        "srv-" + String(URL(fileURLWithPath: data).lastPathComponent.map { $0.isLetter || $0.isNumber ? $0 : "-" })
    }

    /// Registers the replicas `dbs` (each with a remote for this server; `remote` names it when
    /// there are several) and approves them with keys for every region their tokens cover.
    /// `pin`: the server's key pin, for an HTTPS server.
    public func approve(_ dbs: [String], cli: CLIRunner, remote: String? = nil, pin: String? = nil) throws {
        func run(_ args: [String], _ db: String, _ ok: Set<Int32> = [0]) throws -> CLIRunner.Result {
            let r = try cli.run(args, db: db)
            guard ok.contains(r.status) else { throw EnrolmentError(description: "\(args.joined(separator: " ")) on \(db): exit \(r.status): \(r.stderr)") }
            return r
        }
        let coordinator = Self.coordinatorDB(cli)
        if !FileManager.default.fileExists(atPath: coordinator) {
            _ = try run(["init", "--region", "hq", "--device", "coordinator-laptop"], coordinator)
        }
        let me = coordinatorRemote
        if !(try run(["remote", "list"], coordinator).stdout.split(separator: "\n").contains { $0.hasPrefix(me + "\t") }) {
            let token = try self.token("test-coordinator", regions: "*", coordinator: true)
            _ = try run(["remote", "add", me, url, "--token", token] + (pin.map { ["--pin", $0] } ?? []), coordinator)
        }
        let on = ["--remote", me]
        var named: [String: String] = [:]  // fingerprint → db
        for db in dbs {
            _ = try run(["sync"] + (remote.map { [$0] } ?? []), db, [0, 75])
            named[try run(["keys", "fingerprint"], db).line] = db
        }
        let pending = try JSONSerialization.jsonObject(with: Data(try run(["keys", "pending", "--json"] + on, coordinator).stdout.utf8)) as! [[String: String]]
        let held = try run(["keys", "list"], coordinator).stdout
        var created = Set(held.split(separator: "\n").compactMap { $0.hasPrefix("region ") ? String($0.dropFirst(7).prefix { $0 != "\t" }) : nil })
        for d in pending where named[d["fingerprint"]!] != nil {
            for region in d["regions"]!.split(separator: ",").map(String.init) where region != "*" && !created.contains(region) {
                _ = try run(["keys", "create", region] + on, coordinator)
                created.insert(region)
            }
            _ = try run(["keys", "approve", d["device"]!, "--fingerprint", d["fingerprint"]!] + on, coordinator)
        }
    }
}
