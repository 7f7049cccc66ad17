import FieldbookModel

/// A pull cursor: which store issued it, in which of its epochs, and the log position.
///
/// A store starts a new epoch, with a random id, every time a server process opens it, and
/// remembers where each epoch started. A store restored from an older backup, or replaced by
/// another, cannot know the epochs begun after the backup, so a cursor from them is refused;
/// one from an epoch it knows is good only up to where the next epoch began (the log up to there
/// is the same in every copy). A refused cursor makes the client pull again from the start.
///
/// Text form: `c2.<store site>.<epoch hex>.<position>`; opaque to clients.
public struct StoreCursor: Sendable, Equatable {
    public var store: SiteID
    public var epoch: UInt64
    public var position: Int64

    public init(store: SiteID, epoch: UInt64, position: Int64) {
        self.store = store
        self.epoch = epoch
        self.position = position
    }

    public var text: String { "c2.\(store).\(String(epoch, radix: 16)).\(position)" }

    /// Parses a cursor; nil when it is not one this protocol issues (any version, any store).
    public init?(_ s: String) {
        guard s.utf8.count <= WireLimits.maxCursorBytes else { return nil }
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "c2", let store = SiteID(String(parts[1])),
              parts[2].count <= 16, let epoch = UInt64(parts[2], radix: 16),
              let position = Int64(parts[3]), position >= 0 else { return nil }
        self.init(store: store, epoch: epoch, position: position)
    }

    /// Whether a cursor's text has the form of a cursor of an earlier protocol version (`c1.N`).
    public static func isLegacy(_ s: String) -> Bool { s.hasPrefix("c1.") && Int64(s.dropFirst(3)) != nil }
}
