import FieldbookModel

/// A pull cursor: which store issued it, in which of its epochs, and the log position.
///
/// A store starts a new epoch, with a random id, every time a server process opens it, and
/// remembers where each epoch started. A store restored from an older backup, or replaced by
/// another, cannot know the epochs begun after the backup, so a cursor from them is refused;
/// one from an epoch it knows is good only up to where the next epoch began (the log up to there
/// is the same in every copy). A refused cursor makes the client pull again from the start.
///
/// Text form: `c2.<store site>.<epoch hex>.<position>` (embedded store) or
/// `c3.<store site>.<epoch hex>.<xid>.<seq>` (PostgreSQL store); opaque to clients.
public struct StoreCursor: Sendable, Equatable {
    public var store: SiteID
    public var epoch: UInt64
    public var position: Int64
    /// For a PostgreSQL store: the id of the transaction that wrote the entry at `position`
    /// (entries are read in (xid, seq) order, below the oldest transaction still running).
    public var xid: UInt64?

    public init(store: SiteID, epoch: UInt64, position: Int64, xid: UInt64? = nil) {
        self.store = store
        self.epoch = epoch
        self.position = position
        self.xid = xid
    }

    public var text: String {
        if let xid { return "c3.\(store).\(String(epoch, radix: 16)).\(xid).\(position)" }
        return "c2.\(store).\(String(epoch, radix: 16)).\(position)"
    }

    /// Parses a cursor; nil when it is not one this protocol issues (any version, any store).
    public init?(_ s: String) {
        guard s.utf8.count <= WireLimits.maxCursorBytes else { return nil }
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 || parts.count == 5, parts[0] == (parts.count == 4 ? "c2" : "c3"), let store = SiteID(String(parts[1])),
              parts[2].count <= 16, let epoch = UInt64(parts[2], radix: 16),
              parts.last!.count <= 19, let position = Int64(parts.last!), position >= 0 else { return nil }
        var xid: UInt64? = nil
        if parts.count == 5 {
            guard parts[3].count <= 20, let x = UInt64(parts[3]) else { return nil }
            xid = x
        }
        self.init(store: store, epoch: epoch, position: position, xid: xid)
    }

    /// Whether a cursor's text has the form of a cursor of an earlier protocol version (`c1.N`).
    public static func isLegacy(_ s: String) -> Bool { s.hasPrefix("c1.") && Int64(s.dropFirst(3)) != nil }
}
