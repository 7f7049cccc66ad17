import ArgumentParser
import FieldbookKit
import FieldbookModel
import Foundation
import ReplicaStore
import SealedSync
import SyncClient

/// `fieldbook keys …`: this device's fingerprint, and for coordinators the region keys and the
/// devices that receive them (docs/SECURITY.md, "Keys").
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Device fingerprint, region keys, and (coordinators) approving and revoking devices.",
        subcommands: [Fingerprint.self, ListKeys.self, Trust.self, Pending.self, Approve.self, Create.self, Revoke.self,
                      KeysExport.self, KeysImport.self])

    struct Fingerprint: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print this device's fingerprint alone, to read out to a coordinator.")
        @OptionGroup var replica: ReplicaOptions
        func run() throws {
            try SyncCLI.run { print(try KeyStore.deviceKeys(try replica.open().replica).publicKeys.spokenFingerprint) }
        }
    }

    struct ListKeys: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "The region keys this replica holds (never the keys themselves) and the coordinators it trusts.")
        @OptionGroup var replica: ReplicaOptions
        func run() throws {
            try SyncCLI.run {
                let r = try replica.open().replica
                let ring = try KeyStore.keyRing(r)
                if ring.isEmpty { print("no region keys yet") }
                for region in ring.regions { print("region \(region)\tepochs \(ring.epochs(region).map(String.init).joined(separator: ","))") }
                for (fp, how) in try r.read({ db in try KeyStore.trusted(db) }).sorted(by: { $0.key < $1.key }) {
                    print("trusted coordinator \(fp) (\(how))")
                }
            }
        }
    }

    struct Trust: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take keys only from the coordinator with this fingerprint (read out by them from `fieldbook keys fingerprint`).")
        @OptionGroup var replica: ReplicaOptions
        @Argument(help: "The coordinator's fingerprint (six groups of six digits, as `fieldbook keys fingerprint` prints it).") var fingerprint: String
        func run() throws {
            try SyncCLI.run {
                guard let groups = DevicePublicKeys.canonicalFingerprint(fingerprint) else {
                    let why = DevicePublicKeys(agreement: [UInt8](repeating: 0, count: 32), signing: [UInt8](repeating: 0, count: 32)).check(fingerprint: fingerprint)
                    throw SyncClientError(.invalidInput, DevicePublicKeys.explain(why) ?? "not a fingerprint")
                }
                try replica.open().replica.writeDatabase { db in try KeyStore.trust(db, fingerprint: groups, name: nil, how: "set by hand") }
                print("trusted \(groups)")
            }
        }
    }

    struct Pending: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Devices waiting for approval (coordinators).")
        @OptionGroup var replica: ReplicaOptions
        @Option(help: "The remote to ask (default: the only one).") var remote: String?
        @Flag(help: "JSON: an array of objects with device, fingerprint, regions and registered_at.") var json = false
        func run() async throws {
            try await KeysCLI.with(replica, remote) { _, transport in
                let pending = try await transport.devices().filter { $0.state == .pending }
                let rows = pending.map { d -> (DeviceInfo, String) in
                    (d, (try? DevicePublicKeys(agreement: d.agreement, signing: d.signing))?.spokenFingerprint ?? "(malformed keys)")
                }
                if json {
                    let out = rows.map { ["device": $0.0.device, "fingerprint": $0.1, "regions": $0.0.regions.joined(separator: ","),
                                          "registered_at": $0.0.registeredAt] }
                    printBytes(try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys]))
                } else {
                    if rows.isEmpty { print("no device waits for approval") }
                    for (d, fp) in rows {
                        print("\(Terminal.safe(d.device))\tregions \(Terminal.safe(d.regions.joined(separator: ",")))\tfingerprint \(fp)\tsince \(d.registeredAt)")
                    }
                }
            }
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Approve a device after checking the fingerprint its owner reads out: wraps its regions' keys for it (coordinators).")
        @OptionGroup var replica: ReplicaOptions
        @Argument(help: "The device (its token's name), as `keys pending` lists it.") var device: String
        @Option(help: "The fingerprint the device's owner read out from `fieldbook keys fingerprint` (six groups of six digits; the last digit of each group checks the others).") var fingerprint: String
        @Option(help: "The remote (default: the only one).") var remote: String?
        func run() async throws {
            try await KeysCLI.with(replica, remote) { r, transport in
                let devices = try await transport.devices()
                guard let d = devices.first(where: { $0.device == device }) else {
                    throw SyncClientError(.invalidInput, "no device \"\(device)\" is registered with this server; it registers on its first `fieldbook sync`")
                }
                let keys = try DevicePublicKeys(agreement: d.agreement, signing: d.signing)
                // Never the expected value in the message: a hurried coordinator would copy it.
                switch keys.check(fingerprint: fingerprint) {
                case .matches: break
                case .differs: throw SyncClientError(.refused, "\(device): " + DevicePublicKeys.explain(.differs)!)
                case let other: throw SyncClientError(.invalidInput, "--fingerprint: " + DevicePublicKeys.explain(other)!)
                }
                let (n, missing) = try await KeyDelivery.deliver(to: [d], replica: r, transport: transport, approve: [device])
                for m in missing { warn("no key for region \(m) here: \(device) gets it when a coordinator who holds it approves it, or after `fieldbook keys create \(m)`") }
                print("approved \(device): \(n) key\(n == 1 ? "" : "s") delivered")
                // Read back on the same call: their next sync names the coordinator it trusts.
                print("your fingerprint, which their next sync shows: \(try KeyStore.deviceKeys(r).publicKeys.spokenFingerprint)")
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a region's key (or its next epoch) and deliver it to every approved device of the region (coordinators).")
        @OptionGroup var replica: ReplicaOptions
        @Argument(help: "The region, e.g. almaty.") var region: String
        @Option(help: "The remote (default: the only one).") var remote: String?
        func run() async throws {
            try await KeysCLI.with(replica, remote) { r, transport in
                guard Checks.isRegion(region) else { throw SyncClientError(.invalidInput, "\"\(region)\" is not a region name") }
                let (epoch, n) = try await KeyDelivery.newEpoch(region, replica: r, transport: transport)
                print("region \(region): key epoch \(epoch) created, delivered to \(n) device\(n == 1 ? "" : "s")")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a device: the server refuses it from now on, and each of its regions moves to a new key epoch that it does not receive (coordinators).")
        @OptionGroup var replica: ReplicaOptions
        @Argument(help: "The device (its token's name).") var device: String
        @Option(help: "The remote (default: the only one).") var remote: String?
        func run() async throws {
            try await KeysCLI.with(replica, remote) { r, transport in
                let before = try await transport.devices()
                guard let d = before.first(where: { $0.device == device }) else {
                    throw SyncClientError(.invalidInput, "no device \"\(device)\" is registered with this server")
                }
                let ring = try KeyStore.keyRing(r)
                let regions = d.regions.contains(SyncProtocol.allRegions) ? ring.regions : d.regions
                let missing = regions.filter { ring.current($0) == nil }
                guard missing.isEmpty else {
                    throw SyncClientError(.invalidInput,
                        "this device holds no key of \(missing.joined(separator: ", ")), so it cannot move them to a new key epoch; run `fieldbook sync` first (or revoke from a coordinator's device that holds them). Nothing was revoked")
                }
                _ = try await transport.revoke(device: device)
                for region in regions {
                    let (epoch, n) = try await KeyDelivery.newEpoch(region, replica: r, transport: transport)
                    print("region \(region): new key epoch \(epoch), delivered to \(n) device\(n == 1 ? "" : "s")")
                }
                print("revoked \(device). Also revoke its token on the server: fieldbook-server token revoke \(device)")
                print("What \(device) already received stays readable to whoever holds it; nothing written from now on is.")
            }
        }
    }
}

/// The plumbing of the coordinator commands: a remote, this device registered, keys wrapped and sent.
enum KeysCLI {
    static func with(_ options: ReplicaOptions, _ remoteName: String?, _ body: (Replica, SyncTransport) async throws -> Void) async throws {
        do {
            let replica = try options.open().replica
            let remote = try Remotes.pick(replica, remoteName)
            let client = SyncTransport.makeClient()
            do {
                try await body(replica, try await SyncTransport.connect(to: remote, client: client))
                try? await client.shutdown()
            } catch {
                try? await client.shutdown()
                throw error
            }
        } catch { try SyncCLI.fail(error) }
    }
}
