import FieldbookModel
import SyncCore

/// Turns a push request into a batch: structural checks, the batch-size limit, and the split of
/// row changes whose clocks are too far ahead into quarantine. Pure: time is passed in.
public enum PushPlanner {
    public static func plan(_ request: PushRequest, now: Int64, maxDriftMillis: Int64, maxBatchChanges: Int) throws -> PushBatch {
        guard request.from >= 0, request.to >= request.from else {
            throw ServerError.badRequest("invalid", "from (\(request.from)) and to (\(request.to)) must satisfy 0 ≤ from ≤ to")
        }
        let cs = try request.changes.changeset()
        let count = cs.changeCount
        guard count <= maxBatchChanges else {
            throw ServerError(.contentTooLarge, "batch_too_large",
                              "the batch holds \(count) changes; this server accepts at most \(maxBatchChanges) per push. Send smaller batches")
        }
        var keep = Changeset(sites: cs.sites, siteNames: cs.siteNames)
        var quarantined: [(note: QuarantineNote, row: Changeset)] = []
        let limit = now + maxDriftMillis
        for t in cs.tables {
            var kept = TableChanges(table: t.table, fields: t.fields)
            for rc in t.rows {
                let newest = max(HLC(rawValue: rc.hlc), rc.fields.map { HLC(rawValue: $0.hlc) }.max() ?? .zero)
                if newest.millis > limit {
                    let ahead = newest.millis - now
                    let note = QuarantineNote(table: t.table, id: rc.id,
                        reason: "clock \(newest) is \(ahead / 1000) s ahead of the server's (at most \(maxDriftMillis / 1000) s accepted); kept aside, not applied")
                    quarantined.append((note, Changeset(sites: cs.sites, tables: [TableChanges(table: t.table, fields: t.fields, rows: [rc])], siteNames: cs.siteNames)))
                } else {
                    kept.rows.append(rc)
                }
            }
            if !kept.rows.isEmpty { keep.tables.append(kept) }
        }
        return PushBatch(site: request.site, from: request.from, to: request.to, changes: keep, quarantined: quarantined)
    }
}
