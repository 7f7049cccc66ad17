import ArgumentParser
import CProcessHardening
import FieldbookModel
import FieldbookTLS
import Foundation
import Hummingbird
import Logging
import NIOSSL
import PostgresStore
import ReplicaStore
import SyncServer

@main
struct FieldbookServer: AsyncParsableCommand {
    /// No core file, whatever the shell's limit: one would hold the store's key and tokens.
    static func main() async {
        _ = fieldbook_disable_core_dumps()
        await main(nil)
    }

    static let configuration = CommandConfiguration(
        commandName: "fieldbook-server",
        abstract: "The Fieldbook sync server.",
        version: "0.1.0",
        subcommands: [Serve.self, MigrateCommand.self, MigrateStoreCommand.self, TokenCommand.self, QuarantineCommand.self, TLSCommand.self, BundleCommand.self],
        defaultSubcommand: nil
    )
}

/// `--data DIR` (env FIELDBOOK_DATA; default ./fieldbook-data) and the store's passphrase.
struct DataOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The data directory (env FIELDBOOK_DATA; default ./fieldbook-data).", valueName: "dir"))
    var data: String?

    @Option(help: ArgumentHelp("A file holding the passphrase of an encrypted store (env FIELDBOOK_SERVER_PASSPHRASE_FILE, or FIELDBOOK_SERVER_PASSPHRASE).", valueName: "file"))
    var passphraseFile: String?

    @Option(help: ArgumentHelp("A PostgreSQL database to keep the store in instead of the data directory: postgres://USER[:PASSWORD]@HOST[:PORT]/DB (env FIELDBOOK_DATABASE_URL). Several servers may serve one database.", valueName: "url"))
    var database: String?

    @Option(help: ArgumentHelp("A file holding the PostgreSQL password, one line (env FIELDBOOK_DATABASE_PASSWORD_FILE; else PGPASSFILE or ~/.pgpass, as libpq reads them). A password written in --database is visible in the process list.", valueName: "file"))
    var databasePasswordFile: String?

    var directory: String { data ?? ProcessInfo.processInfo.environment["FIELDBOOK_DATA"] ?? "./fieldbook-data" }

    /// The PostgreSQL database, when one is named (`--database` or `FIELDBOOK_DATABASE_URL`).
    func postgres() throws -> PostgresDatabase? {
        let env = ProcessInfo.processInfo.environment
        if let database, let warning = PGPass.commandLineWarning(database) {
            printError("fieldbook-server: warning: \(warning)")
        }
        guard let url = database ?? env["FIELDBOOK_DATABASE_URL"].flatMap({ $0.isEmpty ? nil : $0 }) else { return nil }
        return try PostgresDatabase(url: url, passwordFile: databasePasswordFile, environment: env)
    }

    /// Runs `body` on the store: the PostgreSQL one when a database is named, else the embedded one.
    func withStore<T: Sendable>(_ body: @escaping @Sendable (any ServerStore) async throws -> T) async throws -> T {
        if let db = try postgres() {
            var logger = Logger(label: "fieldbook-server")
            logger.logLevel = .warning
            return try await db.withStore(configuration: try configuration(), logger: logger) { try await body($0) }
        }
        return try await body(try store())
    }

    /// The store's passphrase, if one is given: a new store is then created encrypted.
    func passphrase() throws -> String? {
        let env = ProcessInfo.processInfo.environment
        if let f = passphraseFile ?? env["FIELDBOOK_SERVER_PASSPHRASE_FILE"].flatMap({ $0.isEmpty ? nil : $0 }) {
            guard let data = FileManager.default.contents(atPath: f),
                  let line = String(data: data, encoding: .utf8)?.split(separator: "\n", omittingEmptySubsequences: false).first,
                  !line.isEmpty else {
                throw ServerError.badRequest("invalid", "cannot read a passphrase from \(f)")
            }
            return String(line)
        }
        if let p = env["FIELDBOOK_SERVER_PASSPHRASE"], !p.isEmpty { return p }
        return nil
    }

    func configuration() throws -> ServerConfiguration {
        var c = ServerConfiguration(dataDirectory: directory)
        c.passphrase = try passphrase()
        do {
            c.keyCost = try KeySlots.Cost.fromEnvironment()  // lowered for tests only
        } catch let e as ReplicaError {
            throw ServerError.badRequest("invalid", e.message)
        }
        return c
    }

    func store() throws -> SQLiteServerStore {
        do {
            return try SQLiteServerStore(directory: directory, configuration: try configuration())
        } catch let e as ReplicaError where e.kind == .locked || e.kind == .damaged {
            throw ServerError.badRequest(e.kind == .locked ? "locked" : "damaged", e.message)
        }
    }
}

/// Prints a server error the way the CLI prints errors, with exit code 1 (usage: 64).
func runReporting(_ body: () throws -> Void) throws {
    do { try body() } catch let e as ServerError { throw report(e) }
}

func runReporting(_ body: () async throws -> Void) async throws {
    do { try await body() } catch let e as ServerError { throw report(e) }
}

func report(_ e: ServerError) -> ExitCode {
    printError("fieldbook-server: error: \(e.message)")
    return ExitCode(e.status.code == 400 ? 65 : e.status.code == 403 ? 77 : e.status.code == 503 ? 69 : 1)
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the sync protocol (the embedded SQLite store in the data directory, or PostgreSQL with --database).")

    @OptionGroup var data: DataOptions
    @Option(help: "Address to listen on (env FIELDBOOK_HOST; default 127.0.0.1).") var host: String?
    @Option(help: "Port (env FIELDBOOK_PORT; default 8080; 0 picks a free port).") var port: Int?
    @Option(help: "Log level: trace, debug, info, notice, warning, error (env FIELDBOOK_LOG_LEVEL; default info).") var logLevel: String?
    @Flag(help: "Refuse to run on an unencrypted store: a new store is created encrypted under the passphrase (FIELDBOOK_SERVER_PASSPHRASE, FIELDBOOK_SERVER_PASSPHRASE_FILE or --passphrase-file).")
    var encrypted = false
    @Option(help: ArgumentHelp("The server's certificate (chain), PEM: serve HTTPS only (env FIELDBOOK_TLS_CERT). Devices pin its key: `fieldbook-server tls fingerprint`.", valueName: "file"))
    var tlsCert: String?
    @Option(help: ArgumentHelp("The certificate's private key, PEM (env FIELDBOOK_TLS_KEY).", valueName: "file"))
    var tlsKey: String?
    @Option(help: ArgumentHelp("A file holding a secret of 16 characters or more (e.g. `openssl rand -hex 32`): GET /metrics then serves the Prometheus text format to its bearer (env FIELDBOOK_METRICS_TOKEN_FILE; default: no metrics).", valueName: "file"))
    var metricsTokenFile: String?

    func run() async throws {
        let env = ProcessInfo.processInfo.environment
        let host = self.host ?? env["FIELDBOOK_HOST"] ?? "127.0.0.1"
        let port = self.port ?? env["FIELDBOOK_PORT"].flatMap(Int.init) ?? 8080
        let level = (logLevel ?? env["FIELDBOOK_LOG_LEVEL"]).flatMap(Logger.Level.init(rawValue:)) ?? .info
        var logger = Logger(label: "fieldbook-server")
        logger.logLevel = level
        var config = try data.configuration()
        if let file = metricsTokenFile ?? env["FIELDBOOK_METRICS_TOKEN_FILE"].flatMap({ $0.isEmpty ? nil : $0 }) {
            guard let text = FileManager.default.contents(atPath: file).map({ String(decoding: $0, as: UTF8.self) })?
                .trimmingCharacters(in: .whitespacesAndNewlines), text.count >= 16, !text.contains(where: \.isWhitespace) else {
                printError("fieldbook-server: error: --metrics-token-file \(file): give a readable file holding one secret of 16 characters or more")
                throw ExitCode(64)
            }
            config.metricsTokenHash = [UInt8](Tokens.hash(text))
        }
        if encrypted {
            guard config.passphrase != nil else {
                printError("fieldbook-server: error: --encrypted needs the store's passphrase (FIELDBOOK_SERVER_PASSPHRASE, FIELDBOOK_SERVER_PASSPHRASE_FILE or --passphrase-file)")
                throw ExitCode(78)
            }
            let file = (data.directory as NSString).appendingPathComponent("store.sqlite")
            if FileManager.default.fileExists(atPath: file) && !Replica.isEncrypted(path: file) {
                printError("fieldbook-server: error: \(file) is not encrypted; move it aside and let the devices sync again into an encrypted store")
                throw ExitCode(78)
            }
        }
        var tls: TLSConfiguration? = nil
        let (certFile, keyFile) = (tlsCert ?? env["FIELDBOOK_TLS_CERT"], tlsKey ?? env["FIELDBOOK_TLS_KEY"])
        switch (certFile, keyFile) {
        case let (cert?, key?):
            do { tls = try TLSPin.serverConfiguration(certificateFile: cert, keyFile: key) } catch {
                printError("fieldbook-server: error: cannot load the TLS certificate \(cert) and key \(key): \(error)")
                throw ExitCode(66)
            }
        case (nil, nil):
            if !["127.0.0.1", "::1", "localhost"].contains(host) {
                printError("fieldbook-server: warning: serving plain HTTP on \(host): tokens and sealed changes cross the network unauthenticated; give --tls-cert and --tls-key (or put a TLS proxy in front)")
            }
        default:
            printError("fieldbook-server: error: give both --tls-cert and --tls-key")
            throw ExitCode(64)
        }
        let https = tls != nil
        let announce: @Sendable (Int) async -> Void = { bound in
            print("fieldbook-server listening on \(host):\(bound)\(https ? " (HTTPS)" : "")")
            fflush(nil)
        }
        let metrics = ServerMetrics()
        if let db = try Self.database(data) {
            if encrypted {
                printError("fieldbook-server: error: --encrypted is for the embedded store; encrypt a PostgreSQL database's disk, and mind that its cells are sealed already")
                throw ExitCode(64)
            }
            let client = db.makeClient(logger: logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                defer { group.cancelAll() }
                await PostgresDatabase.started()
                let store: PostgresServerStore
                do { store = try await PostgresServerStore.open(client: client, configuration: config, logger: logger, metrics: metrics) } catch {
                    printError("fieldbook-server: error: cannot open the store in \(db.display): \(error)")
                    throw ExitCode(69)
                }
                try await store.beginEpoch()
                logger.info("store open", metadata: ["database": .string(db.display)])
                logger.debug("store site", metadata: ["site": .string(store.site.description)])
                let app = try ServerApplication.make(store: store, configuration: config, host: host, port: port, logger: logger, tls: tls,
                                                     metrics: metrics, onListening: announce)
                try await app.runService()
            }
            logger.info("stopped")
            return
        }
        let store: SQLiteServerStore
        do { store = try data.store() } catch let e as ServerError {
            printError("fieldbook-server: error: \(e.message)")
            throw ExitCode(e.code == "locked" ? 78 : 74)
        }
        try store.beginEpoch()  // cursors issued before a restore from an older backup are then refused
        logger.info("store open", metadata: ["data": .string(data.directory)])
        logger.debug("store site", metadata: ["site": .string(store.site.description)])
        let app = try ServerApplication.make(store: store, configuration: config, host: host, port: port, logger: logger, tls: tls,
                                             metrics: metrics, onListening: announce)
        try await app.runService()
        logger.info("stopped")
    }

    static func database(_ data: DataOptions) throws -> PostgresDatabase? {
        do { return try data.postgres() } catch let e as ServerError {
            printError("fieldbook-server: error: \(e.message)")
            throw ExitCode(64)
        }
    }
}

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "token", abstract: "Manage device tokens.",
                                                    subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a token; it is printed once, only its hash is stored.")
        @OptionGroup var data: DataOptions
        @Option(help: "A name for the token (the device or person).") var name: String
        @Option(help: "Regions it may push and pull, comma-separated; * (all) for coordinators.") var regions: String
        @Flag(help: "A coordinator token (may name * for all regions).") var coordinator = false

        func run() async throws {
            try await runReporting {
                let regions = try Tokens.validate(name: name, regions: [self.regions], coordinator: coordinator)
                let token = Tokens.generate()
                let (name, coordinator) = (self.name, self.coordinator)
                _ = try await data.withStore { try await $0.createToken(name: name, hash: [UInt8](Tokens.hash(token)), regions: regions, coordinator: coordinator) }
                print(token)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tokens (names, regions, state; never the tokens).")
        @OptionGroup var data: DataOptions

        func run() async throws {
            try await runReporting {
                for t in try await data.withStore({ try await $0.tokens() }) {
                    let state = t.revokedAt.map { "revoked \($0)" } ?? "active"
                    print("\(t.name)\t\(t.regions.joined(separator: ","))\t\(t.coordinator ? "coordinator" : "monitor")\t\(state)\tcreated \(t.createdAt)")
                }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token by name; it stops working at once.")
        @OptionGroup var data: DataOptions
        @Argument var name: String

        func run() async throws {
            try await runReporting {
                let name = self.name
                try await data.withStore { try await $0.revokeToken(name: name) }
                print("revoked \(name)")
            }
        }
    }
}

struct QuarantineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quarantine",
        abstract: "Changes kept aside (clock too far ahead, or waiting behind such a change). They are applied by themselves once no longer ahead.",
        subcommands: [List.self, Release.self, Drop.self])

    /// `ID` or `--all`.
    struct Selection: ParsableArguments {
        @Argument(help: "The id from `quarantine list`.") var id: Int64?
        @Flag(help: "Every quarantined change.") var all = false

        func validate() throws {
            if (id == nil) == !all { throw ValidationError("give a quarantine id or --all (not both)") }
        }

        var selection: QuarantineSelection { id.map { .one($0) } ?? .all }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List quarantined changes: id, received, token, site, record, reason.")
        @OptionGroup var data: DataOptions

        func run() async throws {
            try await runReporting {
                let q = try await data.withStore { try await $0.quarantine() }
                if q.isEmpty { print("no quarantined changes") }
                for e in q {
                    print("\(e.id)\t\(e.receivedAt)\t\(e.token)\t\(e.site)\t\(e.table) \(e.row)\t\(e.reason)\(e.error.map { " — not applied: \($0)" } ?? "")")
                }
            }
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply quarantined changes now, however far ahead their clocks (authorised as when they were pushed).")
        @OptionGroup var data: DataOptions
        @OptionGroup var which: Selection

        func run() async throws {
            let selection = which.selection
            try await runReporting { print("released \(try await data.withStore { try await $0.releaseQuarantine(selection) })") }
        }
    }

    struct Drop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete quarantined changes without applying them.")
        @OptionGroup var data: DataOptions
        @OptionGroup var which: Selection

        func run() async throws {
            let selection = which.selection
            try await runReporting { print("dropped \(try await data.withStore { try await $0.dropQuarantine(selection) })") }
        }
    }
}

struct TLSCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tls", abstract: "The server's TLS certificate.",
                                                    subcommands: [Fingerprint.self])

    struct Fingerprint: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the pin of the server's key (sha256: of its public key) for `fieldbook remote add --pin`.")
        @Option(help: ArgumentHelp("The server's certificate, PEM (env FIELDBOOK_TLS_CERT).", valueName: "file")) var tlsCert: String?

        func run() throws {
            guard let file = tlsCert ?? ProcessInfo.processInfo.environment["FIELDBOOK_TLS_CERT"] else {
                printError("fieldbook-server: error: give --tls-cert FILE")
                throw ExitCode(64)
            }
            do { print(TLSPin.display(try TLSPin.fingerprint(try TLSPin.certificate(file: file)))) } catch {
                printError("fieldbook-server: error: \(file): \(error)")
                throw ExitCode(66)
            }
        }
    }
}
