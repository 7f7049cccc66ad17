import Foundation
import Logging
import NIOSSL
import PostgresNIO
import SyncServer

/// A PostgreSQL database named by a URL, `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`, with
/// optional query settings:
/// - `sslmode=disable|prefer|require` (default: `disable` on loopback, `require` elsewhere — the
///   store holds sealed cells, but tokens' hashes and metadata travel too);
/// - `statement_timeout` (default `30s`): no statement runs longer;
/// - `idle_in_transaction_session_timeout` (default `60s`): a transaction left open by a stuck
///   process is ended, so its row locks do not stop other servers;
/// - `max_connections` (default 20): the pool's size per server process;
/// - `plan_cache_mode` (default `force_custom_plan`): every execution of a prepared statement is
///   planned for the table sizes of that moment and the keys it is given. PostgreSQL's default,
///   `auto`, keeps a generic plan once it has one: made while `fb_row` was small (a fresh
///   database's first minute), it scanned the whole table for every push and pull as the table
///   grew, until the next `ANALYZE` (`statementsPlannedOnASmallTableUseTheirIndexOnceItHasGrown`).
///   The statements now look each key up on its own, which keeps `auto` on the index while the
///   tables were never analysed, but not after an `ANALYZE` of small tables with none since
///   (autovacuum off or behind). Planning costs PostgreSQL about a sixth more CPU under the load test.
public struct PostgresDatabase: Sendable {
    public var configuration: PostgresClient.Configuration
    /// The URL without its password, for logs.
    public var display: String
    /// How the connection is protected: `disable`, `prefer` or `require` (`sslmode`, or its default).
    public var sslMode: String

    /// `passwordFile` and `environment` give the password when the URL has none (`PGPass`).
    public init(url text: String, passwordFile: String? = nil, environment: [String: String] = [:]) throws {
        guard let u = URLComponents(string: text), ["postgres", "postgresql"].contains(u.scheme ?? ""), let bracketed = u.host, !bracketed.isEmpty,
              let user = u.user, !user.isEmpty else {
            throw ServerError.badRequest("invalid", "--database: give postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
        }
        // An IPv6 address comes in brackets ([::1]); the connection wants the address alone.
        let host = bracketed.hasPrefix("[") && bracketed.hasSuffix("]") ? String(bracketed.dropFirst().dropLast()) : bracketed
        let database = String(u.path.drop { $0 == "/" })
        var query: [String: String] = [:]
        for item in u.queryItems ?? [] { query[item.name] = item.value ?? "" }
        let known: Set<String> = ["sslmode", "statement_timeout", "idle_in_transaction_session_timeout", "max_connections", "plan_cache_mode"]
        if let unknown = query.keys.first(where: { !known.contains($0) }) {
            throw ServerError.badRequest("invalid", "--database: unknown setting \"\(unknown)\"; known: \(known.sorted().joined(separator: ", "))")
        }
        let loopback = ["127.0.0.1", "::1", "localhost"].contains(host)
        let tls: PostgresClient.Configuration.TLS
        sslMode = query["sslmode"] ?? (loopback ? "disable" : "require")
        switch sslMode {
        case "disable": tls = .disable
        case "prefer": tls = .prefer(.makeClientConfiguration())
        case "require": tls = .require(.makeClientConfiguration())
        case let other: throw ServerError.badRequest("invalid", "--database: sslmode \"\(other)\" is not disable, prefer or require")
        }
        var password = u.password
        if password == nil {
            do {
                password = try PGPass.password(host: host, port: u.port ?? 5432, database: database.isEmpty ? user : database, user: user,
                                               passwordFile: passwordFile, environment: environment)
            } catch let e as PGPassError {
                throw ServerError.badRequest("invalid", e.message)
            }
        }
        var c = PostgresClient.Configuration(host: host, port: u.port ?? 5432, username: user, password: password,
                                             database: database.isEmpty ? nil : database, tls: tls)
        for (name, fallback) in [("statement_timeout", "30s"), ("idle_in_transaction_session_timeout", "60s")] {
            let v = query[name] ?? fallback
            guard v.range(of: #"^[0-9]{1,9}(ms|s|min)?$"#, options: .regularExpression) != nil else {
                throw ServerError.badRequest("invalid", "--database: \(name) \"\(v)\" is not a duration such as 30s or 500ms")
            }
            c.options.additionalStartupParameters.append((name, v))
        }
        let planning = query["plan_cache_mode"] ?? "force_custom_plan"
        guard ["auto", "force_custom_plan", "force_generic_plan"].contains(planning) else {
            throw ServerError.badRequest("invalid", "--database: plan_cache_mode \"\(planning)\" is not auto, force_custom_plan or force_generic_plan")
        }
        c.options.additionalStartupParameters.append(("plan_cache_mode", planning))
        if let m = query["max_connections"] {
            guard let n = Int(m), (1...500).contains(n) else { throw ServerError.badRequest("invalid", "--database: max_connections must be 1 to 500") }
            c.options.maximumConnections = n
        }
        configuration = c
        var shown = u
        shown.password = u.password == nil ? nil : "***"
        display = shown.string ?? "postgres://\(host)"
    }

    /// Runs `body` with a client whose pool runs beside it, and stops the pool afterwards.
    public func withClient<T: Sendable>(logger: Logger, _ body: @escaping @Sendable (PostgresClient) async throws -> T) async throws -> T {
        let client = makeClient(logger: logger)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                await client.run()
                return nil
            }
            defer { group.cancelAll() }
            await Self.started()
            return try await body(client)
        }
    }

    /// Runs `body` with a store on this database.
    public func withStore<T: Sendable>(configuration serverConfiguration: ServerConfiguration = ServerConfiguration(), logger: Logger,
                                       _ body: @escaping @Sendable (PostgresServerStore) async throws -> T) async throws -> T {
        try await withClient(logger: logger) { client in
            try await body(try await PostgresServerStore.open(client: client, configuration: serverConfiguration, logger: logger))
        }
    }

    /// Creates or upgrades the tables; returns the migrations applied.
    public func migrate(logger: Logger) async throws -> [String] {
        try await withClient(logger: logger) { client in try await PostgresServerStore.migrate(client: client, logger: logger) }
    }

    /// Lets a client's `run()`, just added to a task group, begin before the first lease (a lease
    /// made earlier waits, and PostgresNIO logs a warning about it).
    public static func started() async {
        try? await Task.sleep(for: .milliseconds(20))
    }

    public func makeClient(logger: Logger) -> PostgresClient { PostgresClient(configuration: configuration, backgroundLogger: logger) }
}
