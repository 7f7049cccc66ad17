import FieldbookModel
import Foundation
import SyncCore

/// How a replica behaves. Every property has a documented default.
public struct ReplicaConfiguration: Sendable {
    /// Physical time in milliseconds since 1970. Default: the system clock. Tests pass their own.
    public var clock: @Sendable () -> Int64
    /// How far ahead of local time a remote timestamp may be before a changeset is refused.
    /// Default: 5 minutes (`HybridLogicalClock.defaultMaxDriftMillis`).
    public var maxDriftMillis: Int64
    /// How long a writer waits for another process's lock before failing. Default: 5 seconds.
    public var busyTimeout: TimeInterval
    /// SQLite's page cache per connection, in KiB. Default: 32 MiB (SQLite's own default is
    /// 2 MiB, which a replica of a few thousand records outgrows).
    public var cacheKiB: Int
    /// How much of the file SQLite reads through memory mapping, in bytes. Default: 0 (off;
    /// mapped pages count as resident memory, and measured latency did not improve).
    public var mmapBytes: Int
    /// The page size of a newly created replica file, in bytes (an existing file keeps its own).
    /// Default: 4096 (SQLite's).
    public var pageSize: Int
    /// After how many WAL pages a commit also checkpoints (copies the WAL into the database
    /// file). Default: 2000 (8 MiB of 4 KiB pages; SQLite's default is 1000). A replica writes
    /// about twice the pages of a plain table (clocks and history), so a merge or an import of
    /// a few thousand records would otherwise pay for a checkpoint inside its own commit.
    public var walAutocheckpointPages: Int

    public init(
        clock: @escaping @Sendable () -> Int64 = ReplicaConfiguration.systemMillis,
        maxDriftMillis: Int64 = HybridLogicalClock.defaultMaxDriftMillis,
        busyTimeout: TimeInterval = 5,
        cacheKiB: Int = 32 * 1024,
        mmapBytes: Int = 0,
        pageSize: Int = 4096,
        walAutocheckpointPages: Int = 2000
    ) {
        self.walAutocheckpointPages = walAutocheckpointPages
        self.pageSize = pageSize
        self.cacheKiB = cacheKiB
        self.mmapBytes = mmapBytes
        self.clock = clock
        self.maxDriftMillis = maxDriftMillis
        self.busyTimeout = busyTimeout
    }

    /// The system clock (`SystemClock`, which `FIELDBOOK_CLOCK_SKEW_MS` can shift for drills).
    @Sendable public static func systemMillis() -> Int64 { SystemClock.millis() }
}
