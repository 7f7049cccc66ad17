import _CryptoExtras
import Crypto
import FieldbookModel
import Foundation
import ReplicaStore
import SealedSync
import SyncCore

/// What sealing costs (issue 9): the incident workload's full changeset (10,000 incidents,
/// 16 fields) encoded clear, sealed per cell as Fieldbook does (AES-256-GCM-SIV, nonce derived
/// from the cell's address, 16-byte tag, no nonce on the wire), and two alternatives measured in
/// the same run: AES-GCM with a random 12-byte nonce per cell, and one AEAD per row (which a
/// server could not merge per field, kept for the size comparison).
struct SealPhase {
    struct Figures {
        var cells = 0
        var clearEncodeMs = 0.0, sealMs = 0.0, openMs = 0.0, gcmRandomMs = 0.0, perRowMs = 0.0
        var clearBytes = 0, sealedBytes = 0, gcmRandomBytes = 0, perRowBytes = 0
        var clearGzip = 0, sealedGzip = 0
    }

    func run() throws -> Figures {
        let w = Workload.incidents()
        let site = SiteID.random()
        let h: Int64 = 1_790_000_000_000 << 16
        let fields = w.schema.columnNames
        var rows: [RowChange] = []
        for (i, r) in w.records.enumerated() {
            rows.append(RowChange(id: w.ids[i], cl: 1, hlc: h + Int64(i), site: 0,
                                  fields: r.enumerated().map { FieldChange(field: $0.offset, value: $0.element, hlc: h + Int64(i), site: 0) }))
        }
        let cs = Changeset(sites: [site], tables: [TableChanges(table: "incident", fields: fields, rows: rows)])
        var ring = KeyRing()
        let key = SymmetricKey(size: .bits256)
        ring.add(region: "almaty", epoch: 1, key: key)
        var f = Figures()
        f.cells = cs.changeCount
        var clear: [UInt8] = []
        f.clearEncodeMs = Measure.millis { clear = WireChangeset(cs).binary() }
        var sealedCS = cs
        var sealed: [UInt8] = []
        f.sealMs = try Measure.millis {
            sealedCS = try ChangesetSealer.seal(cs, keys: ring) { _, _ in "almaty" }
            sealed = WireChangeset(sealedCS).binary()
        }
        f.openMs = try Measure.millis {
            let back = try ChangesetSealer.open(try WireChangeset(binary: sealed).changeset(), keys: ring) { _, _ in "almaty" }
            precondition(back.refused.isEmpty && back.clear == cs, "sealing does not round-trip")
        }
        f.clearBytes = clear.count
        f.sealedBytes = sealed.count
        f.clearGzip = Measure.gzipSize(Data(clear))
        f.sealedGzip = Measure.gzipSize(Data(sealed))

        // Alternative: AES-GCM, random nonce per cell (nonce and tag travel: 28 bytes a cell).
        var total = 0
        f.gcmRandomMs = try Measure.millis {
            for r in rows {
                for fc in r.fields where fc.field > 1 {
                    let plain = CellSealer.pad(fc.value)
                    let box = try AES.GCM.seal(plain, using: key, authenticating: Array(r.id.utf8))
                    total += box.combined!.count
                }
            }
        }
        f.gcmRandomBytes = total
        // Alternative: one AEAD per row (GCM-SIV over the row's sealed fields together).
        total = 0
        f.perRowMs = try Measure.millis {
            for r in rows {
                var plain: [UInt8] = []
                for fc in r.fields where fc.field > 1 { plain += CellSealer.pad(fc.value) }
                let box = try AES.GCM._SIV.seal(plain, using: key, authenticating: Array(r.id.utf8))
                total += box.combined.count
            }
        }
        f.perRowBytes = total
        return f
    }
}
