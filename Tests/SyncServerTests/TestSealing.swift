@preconcurrency import Crypto
import FieldbookModel
import Foundation
import SealedSync

/// Sealing for tests that speak raw HTTP: fixed region keys (epoch 1), delivered to the server
/// by a coordinator device that `HTTPTestClient.enrolKeys` registers, so that what a test pushes
/// travels sealed as a real device's changes do. The region each row was sealed under is
/// remembered, so that pulled cells open under the same address.
enum TestSealing {
    static let regions = ["almaty", "atyrau", "shymkent", "astana"]
    static let ring: KeyRing = {
        var r = KeyRing()
        for region in regions { r.add(region: region, epoch: 1, key: SymmetricKey(data: SHA256.hash(data: Data("test key \(region)".utf8)))) }
        return r
    }()
    nonisolated(unsafe) static var sealedUnder: [String: String] = [:]
    static let lock = NSLock()

    /// Seals every value of a record table's sealed fields (garbage tables and fields are left
    /// as they are, for the server to refuse).
    static func seal(_ cs: Changeset) -> Changeset {
        var out = cs
        for (ti, t) in cs.tables.enumerated() {
            guard let schema = try? FieldbookSchema.table(named: t.table) else { continue }
            let regionField = schema.partition.flatMap { t.fields.firstIndex(of: $0) }
            for (ri, rc) in t.rows.enumerated() {
                var region = regionField.flatMap { rf in rc.fields.first { $0.field == rf }?.value.text } ?? lock.withLock { sealedUnder[rc.id] } ?? "almaty"
                if ring.current(region) == nil { region = "almaty" }
                lock.withLock { sealedUnder[rc.id] = sealedUnder[rc.id] ?? region }
                for (fi, f) in rc.fields.enumerated() where f.field < t.fields.count && !schema.clearColumns.contains(t.fields[f.field]) && !f.value.isSealed {
                    guard cs.sites.indices.contains(f.site) else { continue }
                    let address = CellAddress(region: region, table: t.table, row: rc.id, field: t.fields[f.field], hlc: f.hlc, site: cs.sites[f.site])
                    if let (e, k) = ring.current(region), let cell = try? CellSealer.seal(f.value, at: address, epoch: e, key: k) {
                        out.tables[ti].rows[ri].fields[fi].value = .sealed(cell)
                    }
                }
            }
        }
        return out
    }

    /// Opens what a server sent (rows that do not open are left out).
    static func open(_ cs: Changeset) throws -> Changeset {
        try ChangesetSealer.open(cs, keys: ring) { _, id in lock.withLock { sealedUnder[id] } ?? "almaty" }.clear
    }

    /// The key delivery a coordinator's device makes: its own keys registered under `token`,
    /// every test region's key wrapped to itself, approving itself.
    static func upload(name: String) throws -> (DeviceRegistration, KeyUploadRequest) {
        let me = DeviceKeys()
        let pub = me.publicKeys
        var keys: [WrappedKey] = []
        for region in regions {
            let w = try KeyWrap.wrap(ring.key(region, epoch: 1)!, region: region, epoch: 1, device: name, to: pub, from: me)
            keys.append(WrappedKey(device: name, region: region, epoch: 1, wrapped: Data(w).base64EncodedString(), sender: name,
                                   senderAgreement: pub.agreementBase64, senderSigning: pub.signingBase64))
        }
        return (DeviceRegistration(agreement: pub.agreementBase64, signing: pub.signingBase64), KeyUploadRequest(keys: keys, approve: [name]))
    }
}
