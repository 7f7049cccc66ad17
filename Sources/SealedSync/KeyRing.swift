@preconcurrency import Crypto

/// The region keys a device holds: one 256-bit key per region and epoch. A region's current
/// epoch (the highest held) seals; any held epoch opens.
public struct KeyRing: Sendable {
    public private(set) var keys: [String: [UInt32: SymmetricKey]] = [:]

    public init() {}

    public mutating func add(region: String, epoch: UInt32, key: SymmetricKey) {
        keys[region, default: [:]][epoch] = key
    }

    /// The key and epoch that new cells of `region` are sealed under.
    public func current(_ region: String) -> (epoch: UInt32, key: SymmetricKey)? {
        guard let byEpoch = keys[region], let e = byEpoch.keys.max() else { return nil }
        return (e, byEpoch[e]!)
    }

    public func key(_ region: String, epoch: UInt32) -> SymmetricKey? { keys[region]?[epoch] }

    public var regions: [String] { keys.keys.sorted() }

    public func epochs(_ region: String) -> [UInt32] { (keys[region]?.keys).map { $0.sorted() } ?? [] }

    public var isEmpty: Bool { keys.isEmpty }

    /// A new random region key (256 bits).
    public static func newKey() -> SymmetricKey { SymmetricKey(size: .bits256) }
}
