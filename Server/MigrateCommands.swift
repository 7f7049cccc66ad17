import ArgumentParser
import FieldbookModel
import Foundation
import Logging
import PostgresStore
import SyncServer

/// `fieldbook-server migrate --database URL`: creates or upgrades a PostgreSQL store's tables.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate", abstract: "Create or upgrade the tables of a PostgreSQL store (serve does it too; safe to run from several servers at once).")
    @OptionGroup var data: DataOptions

    func run() async throws {
        guard let db = try Serve.database(data) else {
            printError("fieldbook-server: error: migrate needs --database postgres://… (or FIELDBOOK_DATABASE_URL); the embedded store migrates itself when opened")
            throw ExitCode(64)
        }
        var logger = Logger(label: "fieldbook-server")
        logger.logLevel = .warning
        do {
            let applied = try await db.migrate(logger: logger)
            print(applied.isEmpty ? "\(db.display): up to date" : "\(db.display): applied \(applied.joined(separator: ", "))")
        } catch {
            printError("fieldbook-server: error: cannot migrate \(db.display): \(error)")
            throw ExitCode(69)
        }
    }
}

/// `fieldbook-server migrate-store --from DIR --database URL`: the embedded store into PostgreSQL.
struct MigrateStoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate-store",
        abstract: "Copy an embedded store (a data directory) into an empty PostgreSQL store, in one transaction.",
        discussion: "Stop the server first. Devices keep their site positions; their pull cursors are refused once and they pull everything again.")
    @Option(help: ArgumentHelp("The embedded store's data directory.", valueName: "dir")) var from: String
    @OptionGroup var data: DataOptions

    func run() async throws {
        guard let db = try Serve.database(data) else {
            printError("fieldbook-server: error: migrate-store needs --database postgres://… (or FIELDBOOK_DATABASE_URL)")
            throw ExitCode(64)
        }
        guard FileManager.default.fileExists(atPath: (from as NSString).appendingPathComponent("store.sqlite")) else {
            printError("fieldbook-server: error: --from \(from): no store.sqlite there")
            throw ExitCode(66)
        }
        var options = data
        options.data = from
        let source = try options.store()
        let state = try source.exportState()
        final class Cursor: @unchecked Sendable { var position: Int64 = 0; var done = false }
        let cursor = Cursor()
        let pages: @Sendable () throws -> Changeset? = {
            guard !cursor.done else { return nil }
            let batch = try source.replica.changes(since: cursor.position, limit: 20_000)
            cursor.position = batch.cursor
            cursor.done = !batch.hasMore
            return batch.changeset.isEmpty && cursor.done ? nil : batch.changeset
        }
        var logger = Logger(label: "fieldbook-server")
        logger.logLevel = .warning
        try await runReporting {
            let report = try await db.withStore(configuration: try data.configuration(), logger: logger) { store in
                try await store.importEmbedded(state, pages: pages)
            }
            print("copied \(from) into \(db.display): \(report.changes) changes, \(report.tokens) tokens, \(report.devices) devices, \(report.keys) wrapped keys, \(report.held) held changes")
        }
    }
}
