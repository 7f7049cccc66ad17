import FieldbookModel
import Foundation
import GRDB
import Logging
import ReplicaStore
import SealedSync
import SyncCore

/// What a sync did.
public struct SyncSummary: Sendable, Equatable {
    public var pushed = 0
    public var pulled = 0
    public var applied = 0
    public var quarantined = 0
    /// Row changes received and kept aside (did not open, or broke the model): see `RefusedChanges`.
    public var refused = 0
    /// Regions whose changes wait here because this device holds no key for them yet.
    public var waitingForKey: [String] = []
    /// Changes of this device that the server holds (quarantine), after the sync.
    public var held: [QuarantineNote] = []
    /// One-line notices for the user (a cursor reset, …).
    public var notices: [String] = []
    public init() {}
}

/// How a sync runs. Every property has a documented default.
public struct SyncConfiguration: Sendable {
    /// Log entries per pushed batch. Default: 4,000 (each JSON body then stays a few MiB, and
    /// the server's memory well under 200 MiB).
    public var pushBatch = 4_000
    /// Log entries per pulled page. Default: 4,000.
    public var pullPage = 4_000
    /// Attempts per request on transient errors. Default: 5.
    public var attempts = 5
    /// First backoff; doubles each attempt. Default: 0.5 s.
    public var backoff: Duration = .milliseconds(500)
    public init() {}
}

/// Runs a sync with one remote: push every pending local change in batches, then pull until
/// nothing remains. The push position and the pull cursor are saved after every committed
/// batch (the pull cursor in the same transaction as the page it applies), so an interrupted
/// sync resumes with at most one batch sent again.
public struct SyncEngine: Sendable {
    public let replica: Replica
    public let remote: Remote
    public let transport: SyncTransport
    public var configuration: SyncConfiguration
    public let logger: Logger

    public init(replica: Replica, remote: Remote, transport: SyncTransport, configuration: SyncConfiguration = .init(), logger: Logger) {
        self.replica = replica
        self.remote = remote
        self.transport = transport
        self.configuration = configuration
        self.logger = logger
    }

    /// `progress` is called after every batch with the running totals.
    public func run(progress: @Sendable (SyncSummary) -> Void = { _ in }) async throws -> SyncSummary {
        var summary = SyncSummary()
        // A replica of an earlier release gets the sync state's later columns first, and pulls
        // everything again from a server that left out what its schema did not know. Written
        // only when due: a sync of an up-to-date replica opens no write for it.
        if try local({ try replica.read { db in try Remotes.needsSchemaRepull(db) } }) {
            let again = try local {
                try replica.writeDatabase { db in
                    try Remotes.migrate(db)
                    return try Remotes.repullAfterSchemaUpgrade(db)
                }
            }
            if again.contains(remote.name) {
                let notice = "\(remote.name): this release knows more of the records' schema (version \(SyncProtocol.schemaVersion)) than the last pull asked for; pulling everything again"
                logger.notice("\(notice)")
                summary.notices.append(notice)
            }
        }
        do {
            let me = try await enrol(&summary)
            // The device's token scope came with the keys: no separate `GET /v1/scope`.
            let scope = ScopeResponse(token: me.device, regions: me.regions, coordinator: me.coordinator)
            do {
                try await push(&summary, progress, scope: scope)
                try await pull(&summary, progress)
            } catch let e as SyncClientError where e.code == "site_forked" {
                // Another replica writes under this site id (this one was restored from an older
                // backup, or copied): take a new one and exchange everything again. Nothing is
                // lost: this replica's edits go out under the new id, and what the other one
                // pushed under the old id is no longer left out of pulls as an echo.
                let old = replica.info.site
                let new = try local { try replica.takeNewSite { db in try Remotes.forgetSyncState(db) } }
                let notice = "this replica's site \(old) was also used by another copy of it (restored from a backup, or copied to another device); it now writes as site \(new) and exchanges everything again with every remote"
                logger.notice("\(notice)")
                summary.notices.append(notice)
                try await push(&summary, progress, scope: scope)
                try await pull(&summary, progress)
            }
            do {
                summary.held = try await retrying("held") { try await transport.held(site: replica.info.site) }
            } catch let e as SyncClientError where e.status == 404 {
                summary.held = []  // a server that predates GET /v1/held
            }
            let held = String(decoding: try JSONEncoder().encode(summary.held), as: UTF8.self)
            try replica.writeDatabase { db in
                try Remotes.update(db, remote.name, "last_sync = ?, last_error = NULL, held = ?", [ISO8601DateFormatter().string(from: Date()), held])
            }
        } catch {
            let message = (error as? SyncClientError)?.message ?? "\(error)"
            try? replica.writeDatabase { db in try Remotes.update(db, remote.name, "last_error = ?", [message]) }
            throw error
        }
        return summary
    }

    func push(_ summary: inout SyncSummary, _ progress: (SyncSummary) -> Void, scope given: ScopeResponse? = nil) async throws {
        // Only what the token covers goes to this server; the rest stays here (and is reported).
        let scope: ScopeResponse?
        if let given { scope = given } else { scope = try await retrying("scope") { try await transport.scope() } }
        // Only regions this device holds a key for can go out sealed; the rest waits here.
        var ring = try local { try KeyStore.keyRing(replica) }
        var refreshed = false
        let covered = scope?.partitions
        let partitions: Set<String> = covered.map { $0.intersection(ring.regions) } ?? Set(ring.regions)
        summary.waitingForKey = try local { try Self.regionsWithoutKey(replica, ring: ring, covered: covered) }
        // A token that covers other regions than before, or keys for other regions: what was not
        // covered, or had no key, was never sent — the push position goes back to 0.
        let scopeText = scope.map { $0.regions.sorted().joined(separator: ",") }
        let keyedText = partitions.sorted().joined(separator: ",")
        let known = try local {
            try replica.read { db in
                try Row.fetchOne(db, sql: "SELECT regions, keyed_regions FROM _fb_remote WHERE name = ?", arguments: [remote.name])
            }
        }
        let (knownScope, knownKeyed): (String?, String?) = (known?["regions"], known?["keyed_regions"])
        if (scopeText != nil && knownScope != scopeText) || knownKeyed != keyedText {
            try local {
                try replica.writeDatabase { db in
                    let reset = (scopeText != nil && knownScope != nil && knownScope != scopeText) || (knownKeyed != nil && knownKeyed != keyedText)
                    try Remotes.update(db, remote.name, "regions = coalesce(?, regions), keyed_regions = ?" + (reset ? ", push_cursor = 0" : ""),
                                       [scopeText, keyedText])
                }
            }
        }
        let state = try replica.read { db in
            try Row.fetchOne(db, sql: "SELECT push_cursor, push_ack, push_inflight FROM _fb_remote WHERE name = ?", arguments: [remote.name])
        }
        var start: Int64 = state?["push_cursor"] ?? 0
        var ack: String? = state?["push_ack"]
        var inflight: String? = state?["push_inflight"]
        var cursor = start
        while true {
            let batch = try local { try replica.changes(since: cursor, limit: configuration.pushBatch, excludingOrigin: remote.origin,
                                                        partitions: partitions) }
            if batch.cursor == cursor { break }  // nothing after the cursor
            cursor = batch.cursor
            // Ranges that hold nothing for this remote (only changes pulled from it) travel with the next batch.
            if batch.changeset.isEmpty && batch.hasMore { continue }
            let sealed = try local { try seal(batch.changeset, ring: ring) }
            let request = PushRequest(site: replica.info.site, from: start, to: cursor, changes: WireChangeset(sealed))
            // The push's id is kept until it is acknowledged, so that a retry after a lost answer repeats it.
            let id = inflight ?? Self.newPushID()
            if inflight == nil {
                // Kept across a failed sync; a power cut losing it only costs a needless new site id.
                try local { try replica.writeDatabaseUnsynced { db in try Remotes.update(db, remote.name, "push_inflight = ?", [id]) } }
                inflight = id
            }
            let response: PushResponse
            do {
                response = try await retrying("push") { [ack] in try await transport.push(request, ack: ack, id: id) }
            } catch let e as SyncClientError where e.code == "stale_key_epoch" {
                // A region moved to a new key epoch (a device was revoked): take the new key and
                // seal the batch again, once.
                guard !refreshed else {
                    throw SyncClientError(.refused, ([e.message] + summary.notices).joined(separator: "; "), status: e.status, code: e.code)
                }
                refreshed = true
                try await enrol(&summary)
                ring = try local { try KeyStore.keyRing(replica) }
                cursor = start
                continue
            } catch let e as SyncClientError where e.code == "sequence_gap" && start > 0 {
                // The server holds less of this replica than it acknowledged (restored from an
                // older backup, say): send everything again; what it has is ignored.
                logger.warning("server lost track of this replica's pushes; pushing everything again", metadata: ["remote": .string(remote.name)])
                start = 0
                cursor = 0
                continue
            }
            let saved = cursor
            try local {
                try replica.writeDatabase { db in
                    try Remotes.update(db, remote.name, "push_cursor = ?, push_ack = ?, push_inflight = NULL", [saved, id])
                }
            }
            for q in response.quarantined {
                logger.warning("quarantined by the server", metadata: ["table": .string(q.table), "id": .string(q.id), "reason": .string(q.reason)])
            }
            ack = id
            inflight = nil
            summary.pushed += batch.changeset.changeCount
            summary.quarantined += response.quarantined.count
            start = cursor
            progress(summary)
            if !batch.hasMore { break }
        }
    }

    func pull(_ summary: inout SyncSummary, _ progress: (SyncSummary) -> Void) async throws {
        let state = try replica.read { db in
            try Row.fetchOne(db, sql: "SELECT pull_cursor, push_ack FROM _fb_remote WHERE name = ?", arguments: [remote.name])
        }
        var cursor: String? = state?["pull_cursor"]
        let ack: String? = state?["push_ack"]
        let ring = try local { try KeyStore.keyRing(replica) }
        while true {
            let after = cursor
            let page: PullResponse
            do {
                page = try await retrying("pull") {
                    try await transport.pull(cursor: after, limit: configuration.pullPage, site: replica.info.site, ack: ack)
                }
            } catch let e as SyncClientError where e.code == "cursor_reset" && after != nil {
                // Another store, or this one restored from an older backup: start again from its
                // beginning. What this replica holds already is ignored on apply.
                let notice = "\(remote.name): the server's store was replaced or restored from a backup; pulling everything again"
                logger.notice("\(notice)")
                summary.notices.append(notice)
                cursor = nil
                try local { try replica.writeDatabase { db in try Remotes.update(db, remote.name, "pull_cursor = NULL", []) } }
                continue
            }
            let changes: Changeset
            do { changes = try page.changes.changeset() } catch {
                throw SyncClientError(.refused, "\(remote.name) sent changes this client refuses: \(error)")
            }
            let report = try local {
                try replica.write { w -> ApplyReport in
                    let r = try openAndApply(changes, w: w, ring: ring)
                    try Remotes.update(w.db, remote.name, "pull_cursor = ?", [page.cursor])
                    return r
                }
            }
            summary.pulled += changes.changeCount
            summary.applied += report.applied
            summary.refused += report.setAside
            cursor = page.cursor
            progress(summary)
            if !page.more { break }
        }
    }

    /// 16 random bytes as 32 lower-case hex digits.
    static func newPushID() -> String {
        var rng = SystemRandomNumberGenerator()
        return (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
    }

    func local<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as ReplicaError {
            if e.kind == .clock {
                throw SyncClientError(.refused, "\(e.message). This device's clock seems to be behind: correct the system time and sync again")
            }
            throw SyncClientError(e.kind == .invalid || e.kind == .immutableField ? .refused : .local, e.message)
        }
    }

    /// Retries transient failures with exponential backoff.
    func retrying<T: Sendable>(_ what: String, _ body: () async throws -> T) async throws -> T {
        var delay = configuration.backoff
        for attempt in 1... {
            do {
                return try await body()
            } catch let e as SyncClientError where e.kind == .transient && attempt < configuration.attempts {
                logger.notice("\(what) failed, retrying", metadata: ["attempt": .stringConvertible(attempt), "error": .string(e.message)])
                try await Task.sleep(for: max(delay, e.retryAfter ?? .zero))
                delay *= 2
            }
        }
        fatalError("unreachable")
    }
}
