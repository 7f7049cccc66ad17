import FieldbookModel
import ArgumentParser
import FieldbookKit
import Foundation
import Logging
import ReplicaStore
import SealedSync
import SyncClient

struct RemoteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remote", abstract: "Servers this replica syncs with.",
                                                    subcommands: [Add.self, List.self, SetURL.self, Remove.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a server: fieldbook remote add NAME URL; the token is read from --token-file, standard input or a prompt.")
        @OptionGroup var replica: ReplicaOptions
        @Argument(help: "A name for the server, e.g. almaty.") var name: String
        @Argument(help: "Its URL, e.g. http://127.0.0.1:8080") var url: String
        @Option(help: "A file holding the token from `fieldbook-server token create`.") var tokenFile: String?
        @Option(help: "The token itself (lands in shell history: prefer --token-file or the prompt).") var token: String?
        @Flag(help: "Allow plain http:// to a machine other than this one (the token and records cross the network in clear).")
        var insecure = false
        @Option(help: "Trust only the server key with this pin (sha256:…, from `fieldbook-server tls fingerprint`), whatever certificate authority vouches for another.")
        var pin: String?

        func run() throws {
            try SyncCLI.run {
                let store = try replica.open()  // first: a wrong passphrase or URL stops before the token is asked for
                try Remotes.checkURL(url, insecure: insecure)
                let value: String
                if let token {
                    warn("--token leaves the token in your shell history; prefer --token-file FILE, standard input or the prompt")
                    value = token
                } else if let tokenFile {
                    guard let data = FileManager.default.contents(atPath: tokenFile) else {
                        throw SyncClientError(.invalidInput, "cannot read the token file \(tokenFile)")
                    }
                    value = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                } else if isatty(STDIN_FILENO) != 0 {
                    value = getpass("Token for \(name): ").map { String(cString: $0) } ?? ""
                } else {
                    value = (readLine() ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
                }
                try Remotes.add(store.replica, name: name, url: url, token: value, insecure: insecure, pin: pin)
                if pin == nil, url.lowercased().hasPrefix("https://") {
                    warn("\(name) is not pinned: any certificate authority this machine trusts (a national one included) can vouch for an impostor; add it with --pin sha256:… from `fieldbook-server tls fingerprint`")
                }
                if insecure, url.lowercased().hasPrefix("http://") {
                    warn("\(name) is reached over plain http://: anyone on the path can read the token and every record")
                }
                if !store.replica.isEncrypted {
                    warn("this replica is NOT encrypted: the token is stored in clear in \(replica.path)")
                }
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List servers (never the tokens).")
        @OptionGroup var replica: ReplicaOptions

        func run() throws {
            try SyncCLI.run {
                for r in try Remotes.all(try replica.open().replica) {
                    print("\(r.name)\t\(r.url)\tlast sync \(r.lastSync ?? "never")")
                }
            }
        }
    }

    struct SetURL: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-url",
            abstract: "Point a server's entry at another address of the same server (token, pin and sync position kept).")
        @OptionGroup var replica: ReplicaOptions
        @Argument var name: String
        @Argument(help: "Its new URL, e.g. https://fieldbook.example.org") var url: String
        @Flag(help: "Allow plain http:// to a machine other than this one.") var insecure = false

        func run() throws {
            try SyncCLI.run { try Remotes.setURL(try replica.open().replica, name: name, url: url, insecure: insecure) }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a server.")
        @OptionGroup var replica: ReplicaOptions
        @Argument var name: String

        func run() throws {
            try SyncCLI.run { try Remotes.remove(try replica.open().replica, name: name) }
        }
    }
}

struct Sync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Push pending local changes, then pull until nothing remains; every remote when none is named.")

    @OptionGroup var replica: ReplicaOptions
    @Argument(help: "The remote to sync with (default: all).") var remote: String?
    @Option(help: "Log entries per pushed batch (default 4000).") var batch: Int?
    @Option(help: "Log entries per pulled page (default 4000).") var page: Int?
    @Option(help: "Attempts per request on network errors (default 5).") var attempts: Int?

    func run() async throws {
        let store: FieldbookStore
        let remotes: [Remote]
        do {
            store = try replica.open()
            remotes = try remote.map { [try Remotes.named(store.replica, $0)] } ?? Remotes.all(store.replica)
        } catch { try SyncCLI.fail(error) }
        if remotes.isEmpty { try SyncCLI.fail(SyncClientError(.invalidInput, "no remotes; add one with `fieldbook remote add NAME URL --token TOKEN`")) }
        var config = SyncConfiguration()
        if let batch { config.pushBatch = max(1, batch) }
        if let page { config.pullPage = max(1, page) }
        if let attempts { config.attempts = max(1, attempts) }
        var logger = Logger(label: "fieldbook")
        logger.logLevel = .warning
        let terminal = isatty(STDERR_FILENO) != 0
        var failed: (any Error)? = nil
        let client = SyncTransport.makeClient()
        var totals: [String: SyncSummary] = [:]
        // A coordinator relays: what one remote sent goes to the others in the same command (a
        // second round for the remotes that have something pending after the first).
        var round = remotes
        for pass in 1...2 where !round.isEmpty {
            for r in round {
                let started = Date()
                let before = totals[r.name] ?? SyncSummary()
                do {
                    let current = try Remotes.named(store.replica, r.name)
                    let engine = SyncEngine(replica: store.replica, remote: current,
                                            transport: try await SyncTransport.connect(to: current, client: client),
                                            configuration: config, logger: logger)
                    let s = try await engine.run { s in
                        guard terminal else { return }
                        let rate = Double(s.pushed + s.pulled) / max(Date().timeIntervalSince(started), 0.001)
                        FileHandle.standardError.write(Data("\r\(r.name): pushed \(before.pushed + s.pushed), pulled \(before.pulled + s.pulled) (\(Int(rate)) changes/s)   ".utf8))
                    }
                    if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
                    for n in s.notices { FileHandle.standardError.write(Data("fieldbook: notice: \(Terminal.safe(n))\n".utf8)) }
                    var t = before
                    t.pushed += s.pushed
                    t.pulled += s.pulled
                    t.held = s.held
                    t.refused += s.refused
                    t.waitingForKey = s.waitingForKey
                    totals[r.name] = t
                } catch let e as SyncClientError where e.kind == .waiting {
                    if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
                    FileHandle.standardError.write(Data("fieldbook: waiting: \(r.name): \(Terminal.safe(e.message))\n".utf8))
                    failed = e
                    totals[r.name] = nil
                } catch {
                    if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
                    FileHandle.standardError.write(Data("fieldbook: error: \(r.name): \(Terminal.safe((error as? SyncClientError)?.message ?? "\(error)"))\n".utf8))
                    failed = error
                    totals[r.name] = nil
                }
            }
            guard pass == 1, remotes.count > 1, failed == nil else { break }
            round = try remotes.filter { r in try Remotes.pendingCount(store.replica, try Remotes.named(store.replica, r.name)) > 0 }
        }
        for r in remotes {
            guard let s = totals[r.name] else { continue }
            print("\(remotes.count > 1 ? "\(r.name): " : "")pushed \(s.pushed), pulled \(s.pulled)\(s.held.isEmpty ? "" : ", \(s.held.count) held by the server (see `fieldbook status`)")\(s.refused == 0 ? "" : ", \(s.refused) received change\(s.refused == 1 ? "" : "s") kept aside (see `fieldbook check`)")")
            for region in s.waitingForKey {
                warn("\(r.name): changes of region \(region) stay here: this device holds no key for it yet (a coordinator creates it with `fieldbook keys create \(region)` and approves this device)")
            }
        }
        try? await client.shutdown()
        for w in (try? RegionCoverage.warnings(store.replica)) ?? [] { warn(w) }
        if let failed { throw ExitCode(SyncCLI.exitCode(failed)) }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Site id, region, and per remote: pending changes, last sync, quarantined changes.")
    @OptionGroup var replica: ReplicaOptions

    func run() throws {
        try SyncCLI.run {
            let store = try replica.open()
            let info = store.replica.info
            print("site      \(info.site)")
            print("region    \(info.region)")
            if let d = info.device { print("device    \(d)") }
            if store.replica.isEncrypted, let slots = try? Replica.keySlots(path: store.replica.path) {
                print("encrypted yes: AES-256-GCM pages (format \(slots.version)); \(slots.usedSlots) key slot\(slots.usedSlots == 1 ? "" : "s") in use, scrypt 2^\(slots.cost.logN) (\(slots.cost.memory >> 20) MiB)")
                for w in Replica.protectionWarnings(path: store.replica.path) { print("WARNING   \(w)") }
            } else {
                print("encrypted NO — anyone holding this file can read every record and the sync tokens; run `fieldbook encrypt`")
            }
            let remotes = try Remotes.all(store.replica)
            if remotes.isEmpty { print("remotes   none") }
            let refused = try RefusedChanges.all(store.replica)
            if !refused.isEmpty {
                let sites = Set(refused.map(\.site)).sorted()
                print("kept aside \(refused.count) received change\(refused.count == 1 ? "" : "s") (did not open, or broke the model), written by site\(sites.count == 1 ? "" : "s") \(sites.joined(separator: ", ")): see `fieldbook check`")
            }
            let ring = try KeyStore.keyRing(store.replica)
            print("keys      \(ring.isEmpty ? "none yet (a coordinator approves this device after its first sync)" : ring.regions.map { "\($0) (epoch \(ring.current($0)!.epoch))" }.joined(separator: ", "))")
            for region in try KeyStore.regionsWithoutKey(store.replica, ring: ring) {
                print("no key    region \(Terminal.safe(region)): its records stay here, unsent, until this device holds its key")
            }
            for u in try RegionCoverage.uncovered(store.replica) {
                print("not sent  region \(Terminal.safe(u.region)): \(u.records) record\(u.records == 1 ? "" : "s") (no remote's token covers it)")
            }
            for r in remotes {
                let pending = try Remotes.pendingCount(store.replica, r)
                print("remote    \(r.name) \(r.url)")
                print("  pending changes  \(pending)")
                print("  last sync        \(r.lastSync ?? "never")")
                print("  regions          \(r.regions.map { Terminal.safe($0.joined(separator: ", ")) } ?? "not known before the first sync")")
                if let e = r.lastError { print("  last error       \(Terminal.safe(e))") }
                if r.held.isEmpty {
                    print("  held by server   none")
                } else {
                    print("  held by server   \(r.held.count) (applied by the server once no longer ahead of its clock, or by its operator)")
                    for h in r.held { print("    \(Terminal.safe(h.table)) \(Terminal.safe(h.id)): \(Terminal.safe(h.reason))") }
                }
            }
        }
    }
}

enum SyncCLI {
    static func run(_ body: () throws -> Void) throws {
        do { try body() } catch { try fail(error) }
    }

    static func fail(_ error: any Error) throws -> Never {
        if let e = error as? SealedSyncError {
            FileHandle.standardError.write(Data("fieldbook: error: \(Terminal.safe(e.message))\n".utf8))
            switch e.kind {
            case .doesNotOpen: throw ExitCode(78)
            case .fingerprintMismatch, .untrusted: throw ExitCode(77)
            case .malformed: throw ExitCode(65)
            case .missingKey: throw ExitCode(70)
            case .tampered: throw ExitCode(74)
            }
        }
        if let e = error as? SyncClientError {
            FileHandle.standardError.write(Data("fieldbook: error: \(Terminal.safe(e.message))\n".utf8))
            throw ExitCode(exitCode(e))
        }
        try FieldbookCLI.run { throw error }
        throw ExitCode(70)
    }

    static func exitCode(_ error: any Error) -> Int32 {
        guard let e = error as? SyncClientError else { return FieldbookCLI.exitCode(FieldbookError.from(error).kind) }
        switch e.kind {
        case .refused: return 77
        case .transient: return 69
        case .invalidInput: return 65
        case .local: return 70
        case .waiting: return 75
        }
    }
}
