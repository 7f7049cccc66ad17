import FieldbookModel
import Foundation

/// A device name sealed like a cell, so that a server relays the names of the sites in a
/// changeset without reading them: `sealed:v1:REGION:BASE64` in the changeset's `names`, the
/// cell bound to the site (table `_site`, field `name`) under the current key of a region the
/// site wrote to in that changeset. A receiver without that region's key sees no name.
public enum SealedName {
    static let prefix = "sealed:v1:"

    static func address(region: String, site: SiteID) -> CellAddress {
        CellAddress(region: region, table: "_site", row: site.description, field: "name", hlc: 1, site: site)
    }

    public static func seal(_ name: String, site: SiteID, region: String, keys: KeyRing) throws(SealedSyncError) -> String? {
        guard let (epoch, key) = keys.current(region) else { return nil }
        let cell = try CellSealer.seal(.text(name), at: address(region: region, site: site), epoch: epoch, key: key)
        return prefix + region + ":" + Data(cell).base64EncodedString()
    }

    /// The name, when `text` is a sealed name that opens here; nil otherwise (a clear name is
    /// not taken either: no well-behaved device sends one).
    public static func open(_ text: String, site: SiteID, keys: KeyRing) -> String? {
        guard text.hasPrefix(prefix) else { return nil }
        let rest = text.dropFirst(prefix.count)
        guard let colon = rest.firstIndex(of: ":") else { return nil }
        let region = String(rest[..<colon])
        guard Checks.isRegion(region), let cell = Data(base64Encoded: String(rest[rest.index(after: colon)...])),
              case .text(let name)? = try? CellSealer.open([UInt8](cell), at: address(region: region, site: site), keys: keys),
              (try? WireLimits.checkDeviceName(name, field: "name")) != nil
        else { return nil }
        return name
    }
}
