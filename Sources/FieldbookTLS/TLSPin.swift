@preconcurrency import Crypto
import FieldbookModel
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

    /// The pin in its one form, or nil when `text` is not one (see `parse`).
    public static func normalize(_ text: String) -> String? {
        guard case let .success(pin) = parse(text) else { return nil }
        return pin
    }

    /// Why a text is not a pin.
    public enum PinError: Error, Equatable, Sendable {
        /// Groups (1-based) whose check character does not fit: a typo.
        case mistyped(groups: [Int])
        case malformed
    }

    /// A typed pin in its one stored form (`sha256:` and 64 lower-case hex digits): either as
    /// `display` prints it (eight groups of eight hex digits, each with a Luhn mod 16 check
    /// character, checked), or as openssl prints a SHA-256 (64 hex digits, colons allowed).
    /// Either case; dashes, colons and spaces between groups ignored.
    public static func parse(_ text: String) -> Result<String, PinError> {
        guard text.lowercased().hasPrefix("sha256:") else { return .failure(.malformed) }
        let hex = Array(text.dropFirst(7).lowercased().filter { ![":", "-", " "].contains($0) })
        // ASCII only: Swift's isHexDigit also takes full-width digits and letters, which would be
        // stored and then never equal the key's ASCII form.
        guard hex.allSatisfy({ $0.isASCII && $0.isHexDigit }) else { return .failure(.malformed) }
        switch hex.count {
        case 64: return .success("sha256:" + String(hex))
        case 72:
            var plain: [Character] = [], bad: [Int] = []
            for g in 0..<8 {
                let group = Array(hex[(g * 9)..<(g * 9 + 8)])
                let check = CheckCharacters.luhn16(group.map { UInt8($0.hexDigitValue!) })
                if hex[g * 9 + 8].hexDigitValue != Int(check) { bad.append(g + 1) }
                plain += group
            }
            return bad.isEmpty ? .success("sha256:" + String(plain)) : .failure(.mistyped(groups: bad))
        default: return .failure(.malformed)
        }
    }

    /// A pin as people copy it: `sha256:` and eight dash-separated groups of eight hex digits,
    /// each followed by its check character, so that a mistyped group is caught where it is typed.
    public static func display(_ pin: String) -> String {
        guard let plain = normalize(pin) else { return pin }
        let hex = Array(plain.dropFirst(7))
        return "sha256:" + (0..<8).map { g -> String in
            let group = Array(hex[(g * 8)..<(g * 8 + 8)])
            let check = CheckCharacters.luhn16(group.map { UInt8($0.hexDigitValue!) })
            return String(group) + String(check, radix: 16)
        }.joined(separator: "-")
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
                // Neither key is printed: the one presented would be copied in as the new pin.
                throw Failure(description:
                    "\(host):\(port) presented a certificate with another key than the pinned one: someone may be intercepting the connection, or the server's key changed. Do not change the pin to make this work; check the pin with the server's operator in person")
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
