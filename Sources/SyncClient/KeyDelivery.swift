import FieldbookModel
import Foundation
import ReplicaStore
import SealedSync

/// A coordinator's side of key delivery: wrapping the region keys this replica holds for
/// devices and sending them (`fieldbook keys approve|create|revoke`, and a coordinator's sync,
/// which tells a server of the key epochs it holds that the server does not know yet).
public enum KeyDelivery {
    /// This device as the server has it (registered now if it was not).
    public static func me(_ replica: Replica, _ transport: SyncTransport) async throws -> (DeviceKeys, DeviceInfo) {
        let keys = try KeyStore.deviceKeys(replica)
        let pub = keys.publicKeys
        let info = try await transport.registerDevice(DeviceRegistration(agreement: pub.agreementBase64, signing: pub.signingBase64))
        return (keys, info)
    }

    /// Wraps the keys this replica holds for the regions `devices` cover (only `regions` when
    /// given) and delivers them; `approve` names the devices this approves (and this device,
    /// when it is still pending). Returns the number of keys delivered and the regions a device
    /// covers that this replica holds no key for.
    public static func deliver(to devices: [DeviceInfo], replica: Replica, transport: SyncTransport, approve: [String] = [],
                               regions only: Set<String>? = nil) async throws -> (delivered: Int, missing: [String]) {
        let (keys, me) = try await me(replica, transport)
        let pub = keys.publicKeys
        let ring = try KeyStore.keyRing(replica)
        var wrapped: [WrappedKey] = []
        var missing = Set<String>()
        for d in devices {
            let recipient = try DevicePublicKeys(agreement: d.agreement, signing: d.signing)
            let regions = d.regions.contains(SyncProtocol.allRegions) ? ring.regions : d.regions
            for region in regions where only?.contains(region) ?? true {
                let epochs = ring.epochs(region)
                if epochs.isEmpty { missing.insert(region) }
                for e in epochs {
                    let w = try KeyWrap.wrap(ring.key(region, epoch: e)!, region: region, epoch: e, device: d.device, to: recipient, from: keys)
                    wrapped.append(WrappedKey(device: d.device, region: region, epoch: e, wrapped: Data(w).base64EncodedString(), sender: me.device,
                                              senderAgreement: pub.agreementBase64, senderSigning: pub.signingBase64))
                }
            }
        }
        var approving = approve
        if me.state == .pending && !approving.contains(me.device) { approving.append(me.device) }
        // A coordinator approved after its fingerprint was checked is vouched for from now on.
        try replica.writeDatabase { db in
            for d in devices where d.coordinator && approve.contains(d.device) {
                try KeyStore.trust(db, keys: try DevicePublicKeys(agreement: d.agreement, signing: d.signing), name: d.device, how: "approved here")
            }
        }
        let n = try await transport.upload(KeyUploadRequest(keys: wrapped, approve: approving, roster: try KeyStore.roster(replica)))
        return (n, missing.sorted())
    }

    /// Creates the next key epoch of `region` here and delivers it to every approved device
    /// whose token covers the region, this one included. Returns the epoch and how many devices got it.
    public static func newEpoch(_ region: String, replica: Replica, transport: SyncTransport) async throws -> (epoch: UInt32, devices: Int) {
        let (_, me) = try await me(replica, transport)
        // A key is made only for a region this coordinator's token covers: the server would
        // refuse to deliver it anyway, and a key kept here alone would seal what no one can open.
        if let scope = try await transport.scope(), !scope.regions.contains(SyncProtocol.allRegions), !scope.regions.contains(region) {
            throw SyncClientError(.refused,
                "this coordinator's token covers \(scope.regions.joined(separator: ", ")); it may not make keys of region \(region). Nothing was created")
        }
        let server = try await transport.keys().epochs[region] ?? 0
        let held = try KeyStore.keyRing(replica).current(region)?.epoch ?? 0
        if server > held {
            throw SyncClientError(.refused,
                "region \(region) is at key epoch \(server) on this server, and this device does not hold it: a coordinator who holds it approves this device first (or run `fieldbook sync` to receive it)")
        }
        let epoch = max(server, held) + 1
        try replica.writeDatabase { db in
            try KeyStore.add(db, region: region, epoch: epoch, key: KeyRing.newKey(), sender: me.device, senderFingerprint: nil)
        }
        let recipients = try await transport.devices().filter { d in
            (d.state == .approved || d.device == me.device)
                && (d.regions.contains(region) || (d.coordinator && d.regions.contains(SyncProtocol.allRegions)))
        }
        _ = try await deliver(to: recipients, replica: replica, transport: transport, regions: [region])
        return (epoch, recipients.count)
    }

    /// A coordinator's device tells the server of the key epochs it holds that the server is
    /// behind on (a region whose keys were made with another server), by delivering them to
    /// itself; returns the regions it told.
    static func publishEpochs(replica: Replica, transport: SyncTransport, me: DeviceInfo, serverEpochs: [String: UInt32]) async throws -> [String] {
        guard me.coordinator, me.state != .revoked else { return [] }
        let ring = try KeyStore.keyRing(replica)
        let behind = Set(ring.regions.filter { (ring.current($0)?.epoch ?? 0) > (serverEpochs[$0] ?? 0) })
        // A coordinator's new laptop with imported keys approves itself, as `keys create` would.
        let selfApprove = me.state == .pending && !ring.isEmpty
        guard !behind.isEmpty || selfApprove else { return [] }
        _ = try await deliver(to: [me], replica: replica, transport: transport, regions: selfApprove ? nil : behind)
        return behind.sorted()
    }
}
