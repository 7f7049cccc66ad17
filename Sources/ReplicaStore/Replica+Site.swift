import FieldbookModel
import Foundation
import GRDB

extension Replica {
    /// Gives this replica a new site id for its writes from now on, keeping the old one for the
    /// writes already made (their clocks, history and authorship stay as they are).
    ///
    /// For a replica whose site id is also used elsewhere — restored from an older backup, or
    /// one file copied to a second laptop: two writers under one site id would be taken for
    /// one, and the server would hide each one's changes from the other as echoes. Sync state
    /// is the caller's: `also` runs in the same transaction (see `SyncEngine`).
    @discardableResult
    public func takeNewSite(also: (Database) throws -> Void = { _ in }) throws -> SiteID {
        let site = SiteID.random()
        try dbQueue.write { db in
            let device = try String.fetchOne(db, sql: "SELECT device FROM _fb_replica WHERE id = 1")
            try db.execute(sql: "INSERT INTO _fb_site (site, name) VALUES (?, ?)", arguments: [Data(site.bytes), device])
            try db.execute(sql: "UPDATE _fb_replica SET site = ? WHERE id = 1", arguments: [Data(site.bytes)])
            try also(db)
        }
        // Prepared statements name the local site index; the next writer reads it again.
        try dbQueue.writeWithoutTransaction { _ in context.reset() }
        setSite(site)
        return site
    }
}
