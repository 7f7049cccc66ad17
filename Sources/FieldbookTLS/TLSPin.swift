@preconcurrency import Crypto
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOConcurrencyHelpers
import NIOTLS

/// Certificate pinning: a server is named by the SHA-256 of its certificate's public key
/// (SubjectPublicKeyInfo), printed by `fieldbook-server tls fingerprint` and given to
/// `fieldbook remote add --pin`. A pinned remote trusts that key and nothing else: no root
/// certificate installed on the machine (a national one, say) can vouch for another.
public enum TLSPin {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// `sha256:` and 64 lower-case hex digits.
    public static func fingerprint(_ certificate: NIOSSLCertificate) throws -> String {
        let spki = try certificate.extractPublicKey().toSPKIBytes()
        return "sha256:" + SHA256.hash(data: spki).map { String(format: "%02x", $0) }.joined()
    }

    /// The pin in its one form, or nil when `text` is not one (`sha256:` then 64 hex digits,
    /// either case, colons between bytes allowed).
    public static func normalize(_ text: String) -> String? {
        guard text.lowercased().hasPrefix("sha256:") else { return nil }
        let hex = text.dropFirst(7).lowercased().filter { $0 != ":" }
        guard hex.count == 64, hex.allSatisfy(\.isHexDigit) else { return nil }
        return "sha256:" + hex
    }

    /// The first certificate of a PEM file (a server's certificate file).
    public static func certificate(file: String) throws -> NIOSSLCertificate {
        guard let first = try NIOSSLCertificate.fromPEMFile(file).first else {
            throw Failure(description: "\(file) holds no PEM certificate")
        }
        return first
    }

    /// Connects to `host:port`, checks that the certificate the server presents has the pinned
    /// key, and returns it; refuses any other, whoever signed it.
    public static func fetchCertificate(host: String, port: Int, pin: String, timeout: TimeAmount = .seconds(15)) async throws -> NIOSSLCertificate {
        var config = TLSConfiguration.makeClientConfiguration()
        config.minimumTLSVersion = .tlsv12
        let context = try NIOSSLContext(configuration: config)
        let seen = NIOLockedValueBox<(NIOSSLCertificate, String)?>(nil)
        let done = MultiThreadedEventLoopGroup.singleton.any().makePromise(of: Void.self)
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let tls = try NIOSSLClientHandler(context: context, serverHostname: host.first?.isNumber == true || host.contains(":") ? nil : host) { chain, promise in
                        guard let leaf = chain.first, let fp = try? fingerprint(leaf) else {
                            promise.succeed(.failed)
                            return
                        }
                        seen.withLockedValue { $0 = (leaf, fp) }
                        promise.succeed(fp == pin ? .certificateVerified : .failed)
                    }
                    try channel.pipeline.syncOperations.addHandler(tls)
                    try channel.pipeline.syncOperations.addHandler(HandshakeWatcher(done: done))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: host, port: port).get()
        } catch {
            done.fail(error)
            throw Failure(description: "cannot reach \(host):\(port): \(error)")
        }
        do {
            try await done.futureResult.get()
        } catch {
            try? await channel.close()
            if let (_, fp) = seen.withLockedValue({ $0 }), fp != pin {
                throw Failure(description:
                    "\(host):\(port) presented a certificate whose key is \(fp), not the pinned \(pin): someone may be intercepting the connection (or the server's key changed; check with its operator)")
            }
            throw Failure(description: "TLS with \(host):\(port) failed: \(error)")
        }
        try? await channel.close()
        guard let (leaf, fp) = seen.withLockedValue({ $0 }), fp == pin else {
            throw Failure(description: "\(host):\(port) presented no certificate with the pinned key")
        }
        return leaf
    }

    /// A client configuration that trusts `certificate` alone (the pinned server's own; no
    /// system roots), without checking the host name it was made for.
    public static func clientConfiguration(trusting certificate: NIOSSLCertificate) -> TLSConfiguration {
        var config = TLSConfiguration.makeClientConfiguration()
        config.minimumTLSVersion = .tlsv12
        config.trustRoots = .certificates([certificate])
        config.additionalTrustRoots = []
        config.certificateVerification = .noHostnameVerification
        return config
    }

    /// The server's configuration from PEM files: its certificate chain and private key.
    public static func serverConfiguration(certificateFile: String, keyFile: String) throws -> TLSConfiguration {
        let chain = try NIOSSLCertificate.fromPEMFile(certificateFile)
        guard !chain.isEmpty else { throw Failure(description: "\(certificateFile) holds no PEM certificate") }
        let key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
        var config = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        config.minimumTLSVersion = .tlsv12
        return config
    }
}

/// Completes `done` when the TLS handshake completes (or fails with the error that ended it).
final class HandshakeWatcher: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let done: EventLoopPromise<Void>
    init(done: EventLoopPromise<Void>) { self.done = done }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event as? TLSUserEvent ?? .shutdownCompleted { done.succeed(()) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        done.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.fail(TLSPin.Failure(description: "the connection closed during the TLS handshake"))
        context.fireChannelInactive()
    }
}
