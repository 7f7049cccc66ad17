import FieldbookModel
import Foundation
import ReplicaStore
import SyncCore

/// How the server behaves. Every property has a documented default.
public struct ServerConfiguration: Sendable {
    /// Where the store lives. Default: `./fieldbook-data`.
    public var dataDirectory: String
    /// Largest request body accepted, compressed or not, in bytes. Default: 64 MiB.
    public var maxBodyBytes: Int
    /// Most changes (field writes plus row deletes) in one push. Default: 100,000.
    public var maxBatchChanges: Int
    /// Most log entries a pull page covers, and the default page. Defaults: 50,000 and 10,000.
    public var maxPullLimit: Int
    public var defaultPullLimit: Int
    /// How far ahead of the server's clock a change may be before it is quarantined. Default: 5 minutes.
    public var maxDriftMillis: Int64
    /// Physical time in milliseconds. Default: the system clock (`SystemClock`).
    public var clock: @Sendable () -> Int64
    /// The passphrase of an encrypted store: a new store is created encrypted when one is given,
    /// an encrypted store cannot be opened without it. Default: nil (a plain store).
    public var passphrase: String? = nil
    /// scrypt cost of a new encrypted store's key slot. Default: `KeySlots.Cost.standard`.
    public var keyCost: KeySlots.Cost = .standard
    /// SHA-256 of the bearer token that `GET /metrics` asks for. Default: nil — no metrics are
    /// served (404): how many pushes and pulls a server sees, and when, tells an observer when
    /// monitors are active.
    public var metricsTokenHash: [UInt8]? = nil

    public init(
        dataDirectory: String = "./fieldbook-data",
        maxBodyBytes: Int = 64 << 20,
        maxBatchChanges: Int = 100_000,
        maxPullLimit: Int = 50_000,
        defaultPullLimit: Int = 10_000,
        maxDriftMillis: Int64 = HybridLogicalClock.defaultMaxDriftMillis,
        clock: @escaping @Sendable () -> Int64 = SystemClock.millis
    ) {
        self.dataDirectory = dataDirectory
        self.maxBodyBytes = maxBodyBytes
        self.maxBatchChanges = maxBatchChanges
        self.maxPullLimit = maxPullLimit
        self.defaultPullLimit = defaultPullLimit
        self.maxDriftMillis = maxDriftMillis
        self.clock = clock
    }
}
