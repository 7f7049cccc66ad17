import AsyncHTTPClient
import FieldbookModel
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import SealedSync
import SyncCore

/// One simulated device: pushes new persons (about 20 field changes a push) and edits of its own
/// earlier ones, sealed, then pulls, with pauses; fails over to another server when its server
/// does not answer, re-sending the same push (same id: the server takes it once).
struct Device: Sendable {
    struct Outcome: Sendable {
        var pushLatencies: [Double] = []
        var pullLatencies: [Double] = []
        /// When each push that was taken began (parallel to `pushLatencies`, seconds since 1970).
        var pushStarts: [Double] = []
        var pushes = 0
        var changes = 0
        var failovers = 0
        /// Pushes given up after 20 attempts (their rows are not counted as written).
        var gaveUp = 0
        /// Why requests failed, by reason (first 80 characters).
        var errors: [String: Int] = [:]
        /// What this device wrote, as it must end up: row → field → (hlc, site).
        var written: [String: [String: Version]] = [:]
        /// What this device holds after its pulls (observers only: its region), its own writes included.
        var held: [String: [String: Version]]? = nil
    }

    struct Version: Hashable, Sendable { var hlc: Int64; var site: String }

    let index: Int
    let token: String
    let region: String
    let urls: [String]
    let client: HTTPClient
    let ring: KeyRing
    let observer: Bool
    /// The pause between a device's syncs, in milliseconds (uniform).
    let pause: ClosedRange<Int>
    static let fields = ["region", "name", "born", "sex", "occupation"]

    func run(until deadline: Date, seed: UInt64) async -> Outcome {
        var rng = SplitMix64(seed: seed)
        var out = Outcome()
        if observer { out.held = [:] }
        let site = SiteID.random()
        var server = index % urls.count
        var position: Int64 = 0
        var ack: String? = nil
        var cursor: String? = nil
        var counter: Int64 = 0
        var mine: [String] = []
        func hlc() -> Int64 {
            counter += 1
            return Int64(Date().timeIntervalSince1970 * 1000) << 16 | (counter & 0xFFFF)
        }
        while Date() < deadline {
            // ~20 field changes: four new persons, or three and an edit of an earlier one.
            var rows: [RowChange] = []
            var pending = out.written
            for k in 0..<4 {
                if k == 3, !mine.isEmpty, rng.next() % 2 == 0 {
                    let id = mine[Int(rng.next() % UInt64(mine.count))]
                    let h = hlc()
                    rows.append(RowChange(id: id, cl: 1, hlc: pending[id]!["region"]!.hlc, site: 0,
                                          fields: [FieldChange(field: 4, value: .text("edited \(h)"), hlc: h, site: 0)]))
                    pending[id]!["occupation"] = Version(hlc: h, site: site.description)
                    continue
                }
                let id = UUID().uuidString.lowercased()
                let h = hlc()
                let values: [Value] = [.text(region), .text("Person \(index)-\(out.pushes)-\(k)"), .text("19\(50 + Int(rng.next() % 50))"),
                                       .text(rng.next() % 2 == 0 ? "f" : "m"), .text("occupation \(rng.next() % 100)")]
                rows.append(RowChange(id: id, cl: 1, hlc: h, site: 0,
                                      fields: values.enumerated().map { FieldChange(field: $0.offset, value: $0.element, hlc: h, site: 0) }))
                mine.append(id)
                pending[id] = Dictionary(uniqueKeysWithValues: Self.fields.map { ($0, Version(hlc: h, site: site.description)) })
            }
            let clear = Changeset(sites: [site], tables: [TableChanges(table: "person", fields: Self.fields, rows: rows)])
            let region = self.region
            guard let sealed = try? ChangesetSealer.seal(clear, keys: ring, region: { _, _ in region }) else { break }
            let request = PushRequest(site: site, from: position, to: position + 1, changes: WireChangeset(sealed))
            let id = (0..<16).map { _ in String(format: "%02x", Int(rng.next() % 256)) }.joined()
            // The same push again and again, on another server each time, until one takes it.
            var attempts = 0
            while true {
                attempts += 1
                let start = Date()
                do {
                    var req = HTTPClientRequest(url: urls[server] + SyncProtocol.pushPath)
                    req.method = .POST
                    req.headers.add(name: "Authorization", value: "Bearer \(token)")
                    req.headers.add(name: "Content-Type", value: SyncProtocol.binaryMediaType)
                    req.headers.add(name: SyncProtocol.protocolHeader, value: String(SyncProtocol.version))
                    req.headers.add(name: SyncProtocol.schemaHeader, value: String(SyncProtocol.schemaVersion))
                    req.headers.add(name: SyncProtocol.ackHeader, value: ack ?? "none")
                    req.headers.add(name: SyncProtocol.pushIDHeader, value: id)
                    req.body = .bytes(ByteBuffer(bytes: try request.binary()))
                    let r = try await client.execute(req, timeout: .seconds(30))
                    let body = try await r.body.collect(upTo: 1 << 20)
                    guard r.status == .ok else { throw LoadError("push: \(r.status.code) \(String(buffer: body))") }
                    out.pushLatencies.append(Date().timeIntervalSince(start))
                    out.pushStarts.append(start.timeIntervalSince1970)
                    break
                } catch {
                    out.errors[String("push: \(error)".prefix(400)), default: 0] += 1
                    if attempts > 20 {
                        out.gaveUp += 1
                        return out
                    }
                    server = (server + 1) % urls.count
                    out.failovers += 1
                    try? await Task.sleep(for: .milliseconds(100))
                }
            }
            out.written = pending
            position += 1
            ack = id
            out.pushes += 1
            out.changes += rows.reduce(0) { $0 + $1.fields.count }
            // Pull until nothing remains.
            var more = true
            while more {
                let start = Date()
                do {
                    var path = SyncProtocol.pullPath + "?limit=5000&site=\(site)"
                    if let cursor { path += "&cursor=\(cursor)" }
                    var req = HTTPClientRequest(url: urls[server] + path)
                    req.headers.add(name: "Authorization", value: "Bearer \(token)")
                    req.headers.add(name: "Accept", value: SyncProtocol.binaryMediaType)
                    req.headers.add(name: SyncProtocol.protocolHeader, value: String(SyncProtocol.version))
                    req.headers.add(name: SyncProtocol.schemaHeader, value: String(SyncProtocol.schemaVersion))
                    req.headers.add(name: SyncProtocol.ackHeader, value: ack ?? "none")
                    let r = try await client.execute(req, timeout: .seconds(30))
                    let body = try await r.body.collect(upTo: 256 << 20)
                    guard r.status == .ok else { throw LoadError("pull: \(r.status.code) \(String(buffer: body))") }
                    let page = try PullResponse(binary: Array(body.readableBytesView))
                    out.pullLatencies.append(Date().timeIntervalSince(start))
                    if observer { Self.merge(try page.changes.changeset(), into: &out.held!) }
                    cursor = page.cursor
                    more = page.more
                } catch {
                    out.errors[String("pull: \(error)".prefix(80)), default: 0] += 1
                    server = (server + 1) % urls.count
                    out.failovers += 1
                    try? await Task.sleep(for: .milliseconds(100))
                    if Date() > deadline.addingTimeInterval(30) { break }
                }
            }
            try? await Task.sleep(for: .milliseconds(pause.lowerBound + Int(rng.next() % UInt64(pause.count))))
        }
        if observer { for (row, fields) in out.written { for (f, v) in fields { Self.keep(v, row, f, &out.held!) } } }
        return out
    }

    /// Applies pulled field writes to a state (last writer wins by (hlc, site)).
    static func merge(_ cs: Changeset, into state: inout [String: [String: Version]]) {
        for t in cs.tables {
            for r in t.rows {
                for f in r.fields where f.field < t.fields.count && f.site < cs.sites.count {
                    keep(Version(hlc: f.hlc, site: cs.sites[f.site].description), r.id, t.fields[f.field], &state)
                }
            }
        }
    }

    static func keep(_ v: Version, _ row: String, _ field: String, _ state: inout [String: [String: Version]]) {
        if let held = state[row]?[field], (held.hlc, held.site) >= (v.hlc, v.site) { return }
        state[row, default: [:]][field] = v
    }
}
