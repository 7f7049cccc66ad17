import ArgumentParser
import FieldbookModel
import Foundation
import SealedSync
import SyncServer

/// `fieldbook-server bundle import`: a device's bundle, carried in on a USB stick, applied as
/// that device's push — with the same authorisation: the bundle must be signed by the key the
/// device registered, the device approved and its token active.
struct BundleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bundle", abstract: "Offline bundles carried in from devices.",
                                                    subcommands: [Import.self])

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply a bundle made by `fieldbook bundle export` as the push of the device that signed it (idempotent).")
        @OptionGroup var data: DataOptions
        @Argument(help: "The bundle file.") var file: String

        func run() async throws {
            let file = self.file
            try await runReporting {
                guard let bytes = FileManager.default.contents(atPath: file) else {
                    throw ServerError.badRequest("not_found", "cannot read \(file)")
                }
                let bundle: OfflineBundle
                do { bundle = try OfflineBundle.open([UInt8](bytes)) } catch {
                    throw ServerError.badRequest("invalid_bundle", "\(file): \(error)")
                }
                let config = try data.configuration()
                let result = try await data.withStore { store in try await Self.apply(bundle, file: file, config: config, store) }
                print("bundle from \(bundle.device): applied \(result.applied), ignored \(result.ignored)\(result.quarantined.isEmpty ? "" : ", \(result.quarantined.count) held (clock ahead)")")
            }
        }

        static func apply(_ bundle: OfflineBundle, file: String, config: ServerConfiguration, _ store: any ServerStore) async throws -> PushResponse {
            guard let device = try await store.device(bundle.device), device.state == .approved,
                  device.agreement == bundle.signer.agreementBase64, device.signing == bundle.signer.signingBase64 else {
                throw ServerError(.forbidden, "bundle_not_authorised",
                    "\(file) is signed by a key that is not the approved device \"\(bundle.device.prefix(100))\"'s (unknown, pending, revoked, or another key): not applied")
            }
            guard let token = try await store.tokens().first(where: { $0.name == bundle.device && $0.revokedAt == nil }) else {
                throw ServerError(.forbidden, "bundle_not_authorised", "the token of \"\(bundle.device)\" is revoked: not applied")
            }
            let batch = try PushPlanner.plan(bundle.push, now: config.clock(), maxDriftMillis: config.maxDriftMillis,
                                             maxBatchChanges: max(config.maxBatchChanges, 1_000_000))
            return try await store.push(batch, token: token)
        }
    }
}
