import FieldbookModel
import Foundation
import Logging
import PostgresNIO
import SyncCore
import SyncServer

/// The server's store on PostgreSQL: any number of `fieldbook-server` processes may serve one
/// database. Same contract as the embedded store (`ServerStore`), so the routes cannot tell them
/// apart. Pushes merge with the one merge decision (`RowMerge`) under row locks taken in one
/// sorted order, in one transaction with the position check, the authorisation and the
/// quarantine; deadlocks and serialisation failures are retried. Pull cursors are commit-order
/// safe (`fb_log`, see `PostgresSchema`).
///
/// The `PostgresClient` must be running (`client.run()`, a service beside the HTTP server).
public final class PostgresServerStore: ServerStore {
    public let site: SiteID
    let client: PostgresClient
    let configuration: ServerConfiguration
    let logger: Logger
    /// Where connection waits are recorded (the server's metrics), if anywhere.
    public let metrics: ServerMetrics?
    /// How long a request may wait for a connection from the pool before it is answered
    /// `503 busy` (with `Retry-After`). Default: 10 seconds.
    public let connectionWait: Duration
    /// How long a pull waits for transactions that began before changes it can see to end (a
    /// writing transaction of this database, or one whose database is not known, holds them
    /// back; one known to run in another database of the cluster does not). Past it, the pull
    /// answers without those changes, and a later pull gets them. Default: 30 seconds (our own
    /// sessions' statements end within `statement_timeout`, their idle transactions within
    /// `idle_in_transaction_session_timeout`).
    public let horizonWait: Duration
    /// When `releaseDue` last looked at the quarantine.
    let releaseLooked = LastLook()

    init(site: SiteID, client: PostgresClient, configuration: ServerConfiguration, logger: Logger, metrics: ServerMetrics?,
         connectionWait: Duration, horizonWait: Duration) {
        self.site = site
        self.client = client
        self.configuration = configuration
        self.logger = logger
        self.metrics = metrics
        self.connectionWait = connectionWait
        self.horizonWait = horizonWait
    }

    /// Opens the store on a running client: creates or upgrades the tables (`migrate`), and
    /// gives the database a site id on first use.
    public static func open(client: PostgresClient, configuration: ServerConfiguration = ServerConfiguration(),
                            logger: Logger, metrics: ServerMetrics? = nil, connectionWait: Duration = .seconds(10),
                            horizonWait: Duration = .seconds(30)) async throws -> PostgresServerStore {
        try await migrate(client: client, logger: logger)
        let site = try await client.withTransaction(logger: logger) { conn -> SiteID in
            let fresh = SiteID.random().description
            try await conn.query("INSERT INTO fb_meta (key, value) VALUES ('site', \(fresh)) ON CONFLICT (key) DO NOTHING", logger: logger)
            for try await value in try await conn.query("SELECT value FROM fb_meta WHERE key = 'site'", logger: logger).decode(String.self) {
                if let s = SiteID(value) { return s }
            }
            throw ServerError(.internalServerError, "store_failed", "the database's site id is missing or unreadable (fb_meta)")
        }
        return PostgresServerStore(site: site, client: client, configuration: configuration, logger: logger, metrics: metrics,
                                   connectionWait: connectionWait, horizonWait: horizonWait)
    }

    /// Creates or upgrades the tables, one migration per transaction, serialised across
    /// processes by an advisory lock; returns the names of the migrations applied now.
    @discardableResult
    public static func migrate(client: PostgresClient, logger: Logger) async throws -> [String] {
        try await client.withTransaction(logger: logger) { conn -> [String] in
            try await conn.query("SELECT pg_advisory_xact_lock(7305414190225610001)", logger: logger)
            try await conn.query("CREATE TABLE IF NOT EXISTS fb_migration (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
                                 logger: logger)
            var done = Set<String>()
            for try await name in try await conn.query("SELECT name FROM fb_migration", logger: logger).decode(String.self) { done.insert(name) }
            var applied: [String] = []
            for m in PostgresSchema.migrations where !done.contains(m.name) {
                for sql in m.sql { try await conn.query(PostgresQuery(unsafeSQL: sql), logger: logger) }
                try await conn.query("INSERT INTO fb_migration (name) VALUES (\(m.name))", logger: logger)
                applied.append(m.name)
            }
            return applied
        }
    }

    static func now() -> String { ISO8601DateFormatter().string(from: Date()) }

    public func ping() async throws {
        try await reading { conn in _ = try await conn.query("SELECT 1", logger: self.logger) }
    }

    // MARK: Transactions

    /// Runs `body` in a transaction, again (up to 5 times, with a short random wait) when
    /// PostgreSQL ends it for a deadlock, a serialisation failure or a unique key that a
    /// concurrent transaction took first; store failures become `ServerError`s.
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await leased { conn in try await conn.withTransaction(logger: self.logger) { conn in try await body(conn) } }
            } catch {
                if attempt < 5, Self.isRetryable(error) {
                    try await Task.sleep(for: .milliseconds(Int.random(in: 5...(20 * attempt))))
                    continue
                }
                throw Self.mapped(error)
            }
        }
    }

    static func sqlState(_ error: any Error) -> String? {
        if let e = error as? PSQLError { return e.serverInfo?[.sqlState] }
        if let e = error as? PostgresTransactionError {
            return [e.closureError, e.commitError, e.beginError, e.rollbackError].compactMap { $0 }.lazy.compactMap(sqlState).first
        }
        return nil
    }

    static func isRetryable(_ error: any Error) -> Bool {
        ["40001", "40P01", "23505"].contains(sqlState(error) ?? "")
    }

    /// A `ServerError` as it is, a store failure as 503 (connection) or 500.
    static func mapped(_ error: any Error) -> any Error {
        if let e = error as? PostgresTransactionError, let inner = e.closureError, !(inner is PSQLError) { return inner }
        if error is ServerError { return error }
        if let state = sqlState(error) {
            if state.hasPrefix("08") || state == "57P01" || state == "53300" { return ServerError.busy }
            return ServerError(.internalServerError, "store_failed", "the database refused the operation (SQLSTATE \(state))")
        }
        if error is PSQLError { return ServerError.busy }
        return error
    }

    /// Runs a read outside a transaction, mapping failures.
    func reading<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        do { return try await leased(body) } catch { throw Self.mapped(error) }
    }

    /// Runs `body` on a connection from the pool, waiting at most `connectionWait` for one (then
    /// `503 busy`); the wait is recorded in the metrics.
    func leased<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let asked = ContinuousClock.now
        let started = LeaseFlag()
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await self.client.withConnection { conn in
                    started.set()
                    self.metrics?.storeWait(ContinuousClock.now - asked)
                    return try await body(conn)
                }
            }
            group.addTask {
                try await Task.sleep(for: self.connectionWait)
                if started.isSet { return nil }
                self.metrics?.storeWaitTimedOut()
                throw ServerError.busy
            }
            defer { group.cancelAll() }
            while let next = try await group.next() {
                if let value = next { return value }
            }
            throw ServerError.busy
        }
    }
}

/// When something was last done, to do it at most so often.
final class LastLook: @unchecked Sendable {
    private let lock = NSLock()
    private var last: Int64?

    /// True (and `now` becomes the last time) when `every` has passed since the last time, or
    /// the clock went back.
    func advance(to now: Int64, every: Int64) -> Bool {
        lock.withLock {
            if let last, now >= last, now - last < every { return false }
            last = now
            return true
        }
    }
}

/// Whether a lease began (set once, read by the timer).
final class LeaseFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
