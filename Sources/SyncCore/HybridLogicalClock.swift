/// The clock of one replica. A pure value: physical time is passed in, never read here.
///
/// - `tick(physicalMillis:)` stamps a local event (send rule).
/// - `receive(_:physicalMillis:)` merges a remote timestamp (receive rule); a timestamp more than
///   `maxDriftMillis` ahead of local physical time is refused and not adopted.
///
/// When the 16-bit counter would overflow, the logical millisecond part advances by one and
/// the counter restarts, so timestamps stay strictly increasing.
public struct HybridLogicalClock: Sendable, Equatable {
    /// The largest timestamp issued or seen.
    public private(set) var last: HLC
    /// How far ahead of local physical time a remote timestamp may be. Default: 5 minutes.
    public var maxDriftMillis: Int64

    public static let defaultMaxDriftMillis: Int64 = 5 * 60 * 1000

    public init(last: HLC = .zero, maxDriftMillis: Int64 = HybridLogicalClock.defaultMaxDriftMillis) {
        self.last = last
        self.maxDriftMillis = maxDriftMillis
    }

    /// A new timestamp for a local event, greater than every timestamp issued or seen so far.
    public mutating func tick(physicalMillis pt: Int64) throws(SyncCoreError) -> HLC {
        let l = last.millis
        if pt > l {
            last = HLC(millis: pt, counter: 0)
        } else {
            last = try Self.advance(millis: l, counter: last.counter + 1)
        }
        return last
    }

    /// Merges a remote timestamp; returns the new local clock value (greater than both).
    public mutating func receive(_ remote: HLC, physicalMillis pt: Int64) throws(SyncCoreError) -> HLC {
        try check(remote, physicalMillis: pt)
        let l = last.millis
        let m = remote.millis
        let top = max(l, m, pt)
        if top == l && top == m {
            last = try Self.advance(millis: top, counter: max(last.counter, remote.counter) + 1)
        } else if top == l {
            last = try Self.advance(millis: top, counter: last.counter + 1)
        } else if top == m {
            last = try Self.advance(millis: top, counter: remote.counter + 1)
        } else {
            last = HLC(millis: top, counter: 0)
        }
        return last
    }

    /// Throws when `remote` is more than the allowed drift ahead of `physicalMillis`.
    public func check(_ remote: HLC, physicalMillis pt: Int64) throws(SyncCoreError) {
        if remote.millis - pt > maxDriftMillis {
            throw SyncCoreError(.clockDrift,
                "remote timestamp \(remote) is \(remote.millis - pt) ms ahead of local time; at most \(maxDriftMillis) ms is accepted")
        }
    }

    private static func advance(millis: Int64, counter: Int) throws(SyncCoreError) -> HLC {
        if counter <= HLC.maxCounter { return HLC(millis: millis, counter: counter) }
        guard millis + 1 < HLC.maxMillis else { throw SyncCoreError(.clockExhausted, "the clock cannot advance past \(millis) ms") }
        return HLC(millis: millis + 1, counter: 0)
    }
}
