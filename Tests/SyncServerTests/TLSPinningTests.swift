import FieldbookTLS
import Crypto
import FieldbookTestSupport
import Foundation
import Testing

/// Issue 9, item 7: HTTPS with the server's own certificate, pinned by the devices. Certificates
/// are made by openssl, as an operator would make them.
@Suite(.serialized) struct TLSPinningTests {
    @discardableResult
    func ok(_ r: CLIRunner.Result, _ what: String = "") -> CLIRunner.Result {
        #expect(r.status == 0, "\(what): exit \(r.status): \(r.stderr)")
        return r
    }

    func openssl(_ args: [String], in dir: URL) throws {
        let r = try CLIRunner.exec(URL(fileURLWithPath: "/usr/bin/openssl"), args + [], env: [:])
        guard r.status == 0 else { throw HTTPTestError(message: "openssl \(args.joined(separator: " ")): \(r.stderr)") }
    }

    /// A self-signed certificate for 127.0.0.1 (the server's own), and an impostor's for the
    /// same address signed by a certificate authority the client is told to trust.
    func certificates(_ dir: URL) throws -> (own: (String, String), impostor: (String, String), ca: String) {
        let p = { (n: String) in dir.appendingPathComponent(n).path }
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        try openssl(["req", "-x509"] + ec + ["-days", "30", "-subj", "/CN=fieldbook", "-addext", "subjectAltName=IP:127.0.0.1",
                     "-keyout", p("own.key"), "-out", p("own.pem")], in: dir)
        try openssl(["req", "-x509"] + ec + ["-days", "30", "-subj", "/CN=national root", "-keyout", p("ca.key"), "-out", p("ca.pem")], in: dir)
        try openssl(["req"] + ec + ["-subj", "/CN=impostor", "-keyout", p("impostor.key"), "-out", p("impostor.csr")], in: dir)
        try "subjectAltName=IP:127.0.0.1\n".write(toFile: p("ext"), atomically: true, encoding: .utf8)
        try openssl(["x509", "-req", "-in", p("impostor.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"), "-CAcreateserial",
                     "-days", "30", "-extfile", p("ext"), "-out", p("impostor.pem")], in: dir)
        return ((p("own.pem"), p("own.key")), (p("impostor.pem"), p("impostor.key")), p("ca.pem"))
    }

    @Test func aPinnedRemoteSyncsOverHTTPSAndRefusesACertificateARootVouchesFor() throws {
        let cli = try CLIRunner()
        let certs = try certificates(cli.dir)
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path,
                                       arguments: ["--tls-cert", certs.own.0, "--tls-key", certs.own.1])
        defer { server.stop() }
        #expect(server.url.hasPrefix("https://"))
        let pin = try CLIRunner.exec(ServerProcess.binary, ["tls", "fingerprint", "--tls-cert", certs.own.0]).line
        #expect(pin.hasPrefix("sha256:") && pin.count == 7 + 8 * 9 + 7, "eight groups of eight hex digits and a check character: \(pin)")
        // The pin is the SHA-256 of the certificate's public key (SubjectPublicKeyInfo, DER), as
        // openssl computes it; that form is accepted as it is too.
        let der = cli.dir.appendingPathComponent("spki.der").path
        try openssl(["x509", "-in", certs.own.0, "-pubkey", "-noout", "-out", der + ".pem"], in: cli.dir)
        try openssl(["pkey", "-pubin", "-in", der + ".pem", "-outform", "DER", "-out", der], in: cli.dir)
        let spkiHash = SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: der))).map { String(format: "%02x", $0) }.joined()
        #expect(TLSPin.normalize(pin) == "sha256:" + spkiHash, "\(pin) vs openssl's \(spkiHash)")
        // A mistyped character is caught where it is typed, naming its group.
        var typo = Array(pin)
        typo[7 + 9 * 2 + 3] = typo[7 + 9 * 2 + 3] == "a" ? "b" : "a"
        let typoDB = cli.dir.appendingPathComponent("typo.sqlite").path
        ok(try cli.run(["init", "--region", "almaty"], db: typoDB))
        let mistyped = try cli.run(["remote", "add", "x", server.url, "--token", "t", "--pin", String(typo)], db: typoDB)
        #expect(mistyped.status != 0 && mistyped.stderr.contains("group 3 looks mistyped"), "\(mistyped.stderr)")

        let (m, c) = (cli.dir.appendingPathComponent("m.sqlite").path, cli.dir.appendingPathComponent("c.sqlite").path)
        for (db, name, coordinator) in [(m, "aigul", false), (c, "hq", true)] {
            ok(try cli.run(["init", "--region", "almaty", "--device", name], db: db))
            let token = try server.token(name, regions: coordinator ? "*" : "almaty", coordinator: coordinator)
            ok(try cli.run(["remote", "add", "hq", server.url, "--token", token, "--pin", pin.uppercased().replacingOccurrences(of: "SHA256:", with: "sha256:")], db: db))
        }
        ok(try cli.run(["person", "add", "--name", "Sent Over HTTPS"], db: m))
        try server.approve([m, c], cli: cli, pin: pin)
        ok(try cli.run(["sync"], db: m), "pinned sync")
        ok(try cli.run(["sync"], db: c))
        #expect(try cli.run(["list", "persons", "--json"], db: c).stdout.contains("Sent Over HTTPS"))
        // Plain HTTP to the HTTPS port does not get through.
        let plain = cli.dir.appendingPathComponent("plain.sqlite").path
        ok(try cli.run(["init", "--region", "almaty"], db: plain))
        ok(try cli.run(["remote", "add", "hq", server.url.replacingOccurrences(of: "https", with: "http"), "--token", try server.token("plain", regions: "almaty")], db: plain))
        #expect(try cli.run(["sync", "--attempts", "1"], db: plain).status != 0)

        // Someone on the path answers with another key, vouched for by a root this machine trusts.
        server.stop()
        let impostor = try ServerProcess(data: cli.dir.appendingPathComponent("impostor").path, port: server.port,
                                         arguments: ["--tls-cert", certs.impostor.0, "--tls-key", certs.impostor.1])
        defer { impostor.stop() }
        let trusting = ["FIELDBOOK_CA_FILE": certs.ca]
        ok(try cli.run(["person", "add", "--name", "Must Not Leave"], db: m))
        let refused = try cli.run(["sync", "--attempts", "1"], db: m, env: trusting)
        #expect(refused.status == 77, "\(refused.stderr)")
        // Said plainly, and neither key printed (the presented one would be pasted in as the pin).
        let impostorPin = TLSPin.normalize(try CLIRunner.exec(ServerProcess.binary, ["tls", "fingerprint", "--tls-cert", certs.impostor.0]).line)!
        #expect(refused.stderr.contains("another key than the pinned one") && refused.stderr.contains("Do not change the pin"), "\(refused.stderr)")
        #expect(!refused.stderr.contains(String(impostorPin.dropFirst(7).prefix(16))) && !refused.stderr.contains(String(TLSPin.normalize(pin)!.dropFirst(7).prefix(16))),
                "no key printed: \(refused.stderr)")
        // The same root does vouch for it: an unpinned remote would have talked to the impostor.
        let unpinned = cli.dir.appendingPathComponent("unpinned.sqlite").path
        ok(try cli.run(["init", "--region", "almaty"], db: unpinned))
        let added = ok(try cli.run(["remote", "add", "hq", impostor.url, "--token", try impostor.token("u", regions: "almaty")], db: unpinned))
        #expect(added.stderr.contains("not pinned"), "\(added.stderr)")
        let fooled = try cli.run(["sync", "--attempts", "1"], db: unpinned, env: trusting)
        #expect(fooled.status == 75, "reached the impostor, which asks for approval: \(fooled.stderr)")
        // A malformed pin, or a pin on plain HTTP, is refused when the remote is added.
        #expect(try cli.run(["remote", "add", "x", server.url, "--token", "t", "--pin", "sha256:abc"], db: unpinned).status == 65)
        #expect(try cli.run(["remote", "add", "y", "http://127.0.0.1:1", "--token", "t", "--pin", pin], db: unpinned).status == 65)
    }
}
