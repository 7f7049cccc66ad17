@preconcurrency import Crypto
import FieldbookModel
import Foundation
import GRDB
import Synchronization
import SyncCore

/// A local replica: one SQLite file with the registered tables and the sync metadata.
///
/// Every write — values, clocks and log — happens in one transaction (`write`), and applying a
/// remote changeset is one transaction (`apply`): no crash leaves half a record.
public final class Replica: Sendable {
    public let path: String
    public let dbQueue: DatabaseQueue
    public let configuration: ReplicaConfiguration
    public let handles: [String: TableHandle]
    public let tableOrder: [String]
    /// This replica's identity, region and device name. The site id changes only through
    /// `takeNewSite()`.
    public var info: ReplicaInfo { infoBox.withLock { $0 } }
    private let infoBox: Mutex<ReplicaInfo>
    let context: ConnectionContext

    /// Creates a new replica file. Refuses to touch an existing file.
    public static func create(
        path: String, tables: [TableSchema], region: String, device: String? = nil,
        site: SiteID = .random(), configuration: ReplicaConfiguration = ReplicaConfiguration(),
        synchronous: Synchronous = .full, protection: ReplicaProtection = .none
    ) throws -> Replica {
        var start = FileStart.plain
        if case let .passphrase(passphrase, cost) = protection {
            let slots = KeySlots(cost: cost)
            start = .encrypted(slots, kek: try slots.derive(passphrase), decoys: 0)
        }
        return try create(path: path, tables: tables, region: region, device: device, site: site,
                          configuration: configuration, synchronous: synchronous, start: start)
    }

    /// How a new file starts: plain, or encrypted under a passphrase's key already derived
    /// (`decoys` more slots look used), grown with free pages to `padTo` bytes.
    enum FileStart {
        case plain
        case encrypted(KeySlots, kek: SymmetricKey, decoys: Int, padTo: Int64 = 0, created: String? = nil)
    }

    static func create(
        path: String, tables: [TableSchema], region: String, device: String?, site: SiteID,
        configuration: ReplicaConfiguration, synchronous: Synchronous, start: FileStart
    ) throws -> Replica {
        // The device name travels to every replica and terminal that shows history: checked at
        // this entry as the wire checks it (length, one line, no control or direction override).
        if let device {
            do { try WireLimits.checkDeviceName(device, field: "--device") } catch { throw ReplicaError.invalid(error) }
        }
        if FileManager.default.fileExists(atPath: path) {
            throw ReplicaError(.alreadyInitialized, "\(path) already exists; refusing to overwrite it")
        }
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let context = ConnectionContext()
        let queue: DatabaseQueue
        do {
            if case let .encrypted(slots, kek, decoys, _, _) = start {
                try createEncryptedFile(path: path, slots: slots, kek: kek, decoys: decoys)
            } else {
                // Created here so that its mode is 0600 from the first byte.
                let fd = Foundation.open(path, O_RDWR | O_CREAT | O_EXCL, 0o600)
                guard fd >= 0 else { throw ReplicaError(.alreadyInitialized, "cannot create \(path): \(String(cString: strerror(errno)))") }
                close(fd)
                removeStaleLog(path)
            }
            queue = try Self.makeQueue(path: path, configuration: configuration, synchronous: synchronous, context: context)
        } catch {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            throw error
        }
        do {
            try ReplicaSchema.migrator(for: tables).migrate(queue)
            try queue.write { db in
            try db.execute(sql: "INSERT INTO _fb_site (idx, site, name) VALUES (1, ?, ?)", arguments: [Data(site.bytes), device])
            var created = ISO8601DateFormatter().string(from: Date())
            if case let .encrypted(_, _, _, _, was?) = start { created = was }
            try db.execute(
                sql: "INSERT INTO _fb_replica (id, site, region, device, hlc, created_at) VALUES (1, ?, ?, ?, 0, ?)",
                arguments: [Data(site.bytes), region, device, created])
            }
            // Best effort: after a duress wipe only the wipe itself may fail (a full disk must
            // not turn into an error that shows the duress).
            if case let .encrypted(_, _, _, padTo, _) = start, padTo > 0 { try? pad(queue, path: path, to: padTo) }
        } catch {
            try? queue.close()
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            throw error
        }
        return try Replica(path: path, queue: queue, tables: tables, configuration: configuration, context: context)
    }

    /// Opens an existing replica, migrating its schema forward if needed.
    ///
    /// An encrypted file needs its `passphrase`; a duress passphrase destroys every key slot and
    /// opens a fresh, empty replica of the same region in its place, as if nothing happened.
    public static func open(
        path: String, tables: [TableSchema], configuration: ReplicaConfiguration = ReplicaConfiguration(),
        synchronous: Synchronous = .full, passphrase: String? = nil
    ) throws -> Replica {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ReplicaError(.notAReplica, "no replica at \(path); create one with `fieldbook init --region REGION`")
        }
        try ReplicaFile.check(path: path)
        if isEncrypted(path: path) {
            let (slots, unlocked, kek) = try unlock(path: path, passphrase: passphrase)
            switch unlocked {
            case let .key(key, _):
                if slots.version >= 2 && slots.kinds(dataKey: key) == nil { throw KeySlots.alteredHeader(path) }
                EncryptingVFS.register(path: path, key: key, fileID: slots.boundFileID)
            case let .duress(payload, _):
                // The same work as a real open from here on, as near as can be: no second key
                // derivation (the new file keeps the salt and cost, so the key just derived
                // serves it), as many used slots as before, about the same size.
                var was = try? JSONDecoder().decode(DuressPayload.self, from: Data(payload))
                // A name an earlier release stored that today's check refuses must not turn into
                // an error after the wipe: the new replica then has no device name.
                if let d = was?.device, (try? WireLimits.checkDeviceName(d, field: "device")) == nil { was?.device = nil }
                let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0
                let wal = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? NSNumber)?.int64Value ?? 0
                try wipe(path: path)
                return try create(path: path, tables: tables, region: was?.region ?? "unknown", device: was?.device, site: .random(),
                                  configuration: configuration, synchronous: synchronous,
                                  start: .encrypted(slots.renewed(), kek: kek, decoys: max(0, slots.usedSlots - 1),
                                                    padTo: size + wal, created: was?.created))
            }
        }
        let queue: DatabaseQueue
        let context = ConnectionContext()
        do {
            queue = try Self.makeQueue(path: path, configuration: configuration, synchronous: synchronous, context: context)
            let isReplica = try queue.read { db in try db.tableExists("_fb_replica") }
            guard isReplica else { throw ReplicaError(.notAReplica, "\(path) is not a Fieldbook replica") }
            // Read-only unless a migration is due: opening must not write to a file it has not yet
            // found sound (a damaged page of an encrypted replica is reported, nothing written).
            let migrator = ReplicaSchema.migrator(for: tables)
            if try !queue.read({ db in try migrator.hasCompletedMigrations(db) }) { try migrator.migrate(queue) }
        } catch let e as ReplicaError {
            throw e
        } catch let e as DatabaseError where ReplicaError.from(e).kind == .damaged {
            throw ReplicaError.from(e)
        } catch let e as DatabaseError {
            // Busy, locked, no permission, a directory where -wal and -shm cannot be made: a
            // replica that cannot be opened now, not "not a replica".
            throw ReplicaError(.database, "\(path) cannot be opened: \(e.message ?? "SQLite error \(e.resultCode)")")
        } catch {
            throw ReplicaError(.notAReplica, "\(path) cannot be opened as a Fieldbook replica: \(error)")
        }
        return try Replica(path: path, queue: queue, tables: tables, configuration: configuration, context: context)
    }

    /// Grows a new file to about `size` bytes with free pages (sealed zeros, which cannot be
    /// told from sealed records), 4 MiB at a time, each checkpointed into the file, so that the
    /// WAL never holds more than that. Its time grows with `size` (docs/SECURITY.md).
    private static func pad(_ queue: DatabaseQueue, path: String, to size: Int64) throws {
        let now = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0
        var remaining = size - now
        guard remaining > 0 else { return }
        try queue.writeWithoutTransaction { db in
            // Freed schema and table pages are zeroed, so nothing of the padding shows inside.
            try db.execute(sql: "PRAGMA secure_delete = ON")
            defer {
                try? db.execute(sql: "DROP TABLE IF EXISTS _fb_pad")
                try? db.checkpoint(.truncate)
                try? db.execute(sql: "PRAGMA secure_delete = OFF")
            }
            try db.execute(sql: "CREATE TABLE _fb_pad (b BLOB)")
            while remaining > 0 {
                let n = min(remaining, 4 << 20)
                try db.execute(sql: "INSERT INTO _fb_pad (b) VALUES (zeroblob(?))", arguments: [n])
                try db.checkpoint(.truncate)
                remaining -= n
            }
        }
    }

    public enum Synchronous: String, Sendable {
        case normal = "NORMAL"
        case full = "FULL"
    }

    private static func makeQueue(path: String, configuration: ReplicaConfiguration, synchronous: Synchronous,
                                  context: ConnectionContext) throws -> DatabaseQueue {
        EncryptingVFS.install()
        var config = Configuration()
        // WAL is set below, not through GRDB's `.wal`, which writes a probe table at every open
        // (for DatabasePool readers): opening must not write.
        config.busyMode = .timeout(configuration.busyTimeout)
        config.prepareDatabase { db in
            // Takes effect only while the file is still empty (before WAL mode is set up).
            try db.execute(sql: "PRAGMA page_size = \(configuration.pageSize)")
            if try String.fetchOne(db, sql: "PRAGMA journal_mode") != "wal" {
                guard try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL") == "wal" else {
                    throw ReplicaError(.database, "\(path) cannot be put in WAL mode")
                }
            }
            try db.execute(sql: "PRAGMA synchronous = \(synchronous.rawValue)")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(configuration.walAutocheckpointPages)")
            try db.execute(sql: "PRAGMA cache_size = -\(configuration.cacheKiB)")
            try db.execute(sql: "PRAGMA mmap_size = \(configuration.mmapBytes)")
            // Temporary tables, indices and sorts stay in memory: a temporary file would hold
            // clear pages of an encrypted replica (the VFS refuses to open one).
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
            ClockFunction.register(db, capture: context.capture)
        }
        return try DatabaseQueue(path: path, configuration: config)
    }

    private init(path: String, queue: DatabaseQueue, tables: [TableSchema], configuration: ReplicaConfiguration,
                 context: ConnectionContext) throws {
        self.path = path
        self.context = context
        self.dbQueue = queue
        self.configuration = configuration
        let (info, indices) = try queue.read { db -> (ReplicaInfo, [String: Int64]) in
            guard let row = try Row.fetchOne(db, sql: "SELECT site, region, device FROM _fb_replica WHERE id = 1"),
                  let site = SiteID(bytes: [UInt8](row["site"] as Data))
            else { throw ReplicaError(.notAReplica, "\(path) has no replica identity") }
            let info = ReplicaInfo(site: site, region: row["region"], device: row["device"])
            var idx: [String: Int64] = [:]
            for r in try Row.fetchAll(db, sql: "SELECT idx, name FROM _fb_table") { idx[r["name"]] = r["idx"] }
            return (info, idx)
        }
        self.infoBox = Mutex(info)
        var h: [String: TableHandle] = [:]
        for t in tables {
            guard let i = indices[t.name] else { throw ReplicaError(.notAReplica, "table \(t.name) is not registered in \(path)") }
            h[t.name] = TableHandle(schema: t, index: i)
        }
        handles = h
        tableOrder = tables.map(\.name)
    }

    func setSite(_ site: SiteID) { infoBox.withLock { $0.site = site } }

    /// When this replica was created (ISO 8601, as `init` wrote it).
    public func createdAt() throws -> String? {
        try read { db in try String.fetchOne(db, sql: "SELECT created_at FROM _fb_replica WHERE id = 1") }
    }

    /// The handle of a registered table, or an error naming the known tables.
    public func handle(_ table: String) throws -> TableHandle {
        if let h = handles[table] { return h }
        throw ReplicaError.invalid(ModelError(.unknownTable, field: table,
            reason: "is not a table of this replica; tables: \(tableOrder.joined(separator: ", "))"))
    }

    /// Runs `body` in one write transaction: every local write it makes is captured with its
    /// clocks and logged; all of it commits or none of it does.
    public func write<T>(_ body: (ReplicaWriter) throws -> T) throws -> T {
        do {
            return try dbQueue.write { db in
                let w = try ReplicaWriter(db: db, replica: self)
                let result = try body(w)
                try w.finish()
                // Once committed, the next writer may start from here (if no other connection
                // writes meanwhile). Set in the commit itself, on the writer queue: set after it,
                // a writer that slipped in between would be followed by one starting from this
                // older state (a log sequence number taken twice; seen under load).
                let snapshot = w.snapshot
                let context = self.context
                db.afterNextTransaction(onCommit: { _ in context.snapshot = snapshot })
                return result
            }
        } catch let e as ReplicaError {
            throw e
        } catch let e as DatabaseError {
            throw ReplicaError.from(e)
        }
    }

    /// Runs `body` in a plain write transaction (for tables outside the sync engine, such as
    /// sync state; changes to synced tables belong in `write`).
    public func writeDatabase<T>(_ body: (Database) throws -> T) throws -> T {
        try dbQueue.write(body)
    }

    /// Like `writeDatabase`, but the commit does not wait for the disk (`synchronous = OFF` for
    /// this transaction only): for bookkeeping that must survive the process, not a power cut.
    public func writeDatabaseUnsynced<T>(_ body: (Database) throws -> T) throws -> T {
        try dbQueue.writeWithoutTransaction { db in
            let level = try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? 2
            try db.execute(sql: "PRAGMA synchronous = OFF")
            defer { try? db.execute(sql: "PRAGMA synchronous = \(level)") }
            var result: T?
            try db.inTransaction {
                result = try body(db)
                return .commit
            }
            guard let result else { throw ReplicaError(.database, "the transaction produced no result") }
            return result
        }
    }

    /// Runs `body` with read access to the database.
    public func read<T>(_ body: (Database) throws -> T) throws -> T {
        try dbQueue.read(body)
    }

    /// Applies a changeset from another replica in one transaction and reports what changed.
    /// Throws (and changes nothing) when a change is invalid or its clock is too far ahead.
    public func apply(_ changeset: Changeset, origin: Int64 = 0) throws -> ApplyReport {
        try write { w in try w.apply(changeset, origin: origin) }
    }
}

/// Who a replica is.
public struct ReplicaInfo: Sendable, Equatable {
    public var site: SiteID
    public var region: String
    public var device: String?
}
