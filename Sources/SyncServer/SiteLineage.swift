import FieldbookModel

/// The chain of pushes the server accepted under one site id, used to notice when two writers
/// use that id: a replica restored from an older backup, or one file copied to a second laptop.
/// Pure: the store reads `SiteLineage` from its records and carries out the decision.
///
/// Every push names the id of the last push this server acknowledged to the replica (`ack`,
/// `nil` before the first) and its own random id (`id`, kept by the client until acknowledged,
/// so that a retry after a lost answer repeats it). One writer always names the server's last
/// accepted push; a second writer under the same site id, or the same writer after a restore,
/// names an older one.
public struct SiteLineage: Sendable, Equatable {
    /// The id of the last accepted push (nil: none, or only pushes without lineage).
    public var last: String?
    /// The `ack` that push named.
    public var previous: String?

    public init(last: String?, previous: String?) {
        self.last = last
        self.previous = previous
    }

    /// What a request claims about the site's history.
    public enum Claim: Sendable, Equatable {
        /// The request carries no lineage (a client of an earlier release): nothing can be checked.
        case absent
        /// The last push this server acknowledged to the sender (`nil`: none yet), and the request's own id.
        case present(ack: String?, id: String?)
    }

    public enum Decision: Sendable, Equatable {
        /// Accept; the site's lineage becomes this.
        case accept(SiteLineage)
        /// The same push again (its answer was lost): accept, the lineage stays.
        case retry
        /// Two writers use this site id: refuse (409 `site_forked`).
        case forked
    }

    /// The decision for a push of a site whose lineage is `stored` (nil: a site not seen before).
    public static func push(stored: SiteLineage?, claim: Claim) -> Decision {
        guard case let .present(ack, id) = claim, let id else {
            return .accept(SiteLineage(last: nil, previous: nil))  // cannot be followed; the next checked push starts again
        }
        guard let stored, let last = stored.last else { return .accept(SiteLineage(last: id, previous: ack)) }
        if ack == last { return .accept(SiteLineage(last: id, previous: last)) }
        if id == last && ack == stored.previous { return .retry }
        return .forked
    }

    /// Whether a pull may leave out the requester's own pushes: only when it has every push the
    /// server accepted under its site id (else the server's record of that site must be sent).
    public static func pullAllowed(stored: SiteLineage?, claim: Claim) -> Bool {
        guard case let .present(ack, _) = claim, let stored, let last = stored.last else { return true }
        return ack == last
    }

    /// A lineage id as it travels: 32 lower-case hex digits (16 random bytes).
    public static func isValidID(_ s: Substring) -> Bool {
        s.utf8.count == 32 && s.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// Reads the claim from the header values (`none` for no acknowledged push yet); nil when
    /// malformed. A push (`needsID`) names its id whenever it names an ack.
    public static func claim(ack: String?, id: String?, needsID: Bool) -> Claim? {
        guard let ack else { return id == nil ? .absent : nil }
        if needsID && id == nil { return nil }
        let a: String? = ack == "none" ? nil : ack
        if let a, !isValidID(a[...]) { return nil }
        if let id, !isValidID(id[...]) { return nil }
        return .present(ack: a, id: id)
    }
}
