import SyncCore
import Testing

@Suite struct HybridLogicalClockTests {
    @Test func tickFollowsPhysicalTimeWhenItMovesOn() throws {
        var c = HybridLogicalClock()
        let a = try c.tick(physicalMillis: 1_000)
        #expect(a == HLC(millis: 1_000, counter: 0))
        let b = try c.tick(physicalMillis: 1_000)
        #expect(b == HLC(millis: 1_000, counter: 1))
        let d = try c.tick(physicalMillis: 999)  // physical clock stepped back
        #expect(d > b)
        #expect(try c.tick(physicalMillis: 2_000) == HLC(millis: 2_000, counter: 0))
    }

    @Test func receiveMovesPastTheRemoteTimestamp() throws {
        var c = HybridLogicalClock()
        _ = try c.tick(physicalMillis: 1_000)
        let remote = HLC(millis: 1_500, counter: 7)
        let r = try c.receive(remote, physicalMillis: 1_200)
        #expect(r == HLC(millis: 1_500, counter: 8))
        #expect(try c.tick(physicalMillis: 1_200) > remote)
    }

    @Test func counterOverflowAdvancesTheMillisecond() throws {
        var c = HybridLogicalClock(last: HLC(millis: 5_000, counter: HLC.maxCounter))
        let t = try c.tick(physicalMillis: 5_000)
        #expect(t == HLC(millis: 5_001, counter: 0))
        var r = HybridLogicalClock()
        let got = try r.receive(HLC(millis: 5_000, counter: HLC.maxCounter), physicalMillis: 5_000)
        #expect(got > HLC(millis: 5_000, counter: HLC.maxCounter))
    }

    @Test func timestampTooFarAheadIsRefusedAndNotAdopted() throws {
        var c = HybridLogicalClock(maxDriftMillis: 5 * 60 * 1000)
        _ = try c.tick(physicalMillis: 1_000_000)
        let before = c.last
        #expect(throws: SyncCoreError.self) {
            try c.receive(HLC(millis: 1_000_000 + 5 * 60 * 1000 + 1, counter: 0), physicalMillis: 1_000_000)
        }
        #expect(c.last == before)
        _ = try c.receive(HLC(millis: 1_000_000 + 5 * 60 * 1000, counter: 0), physicalMillis: 1_000_000)
    }

    @Test func timestampsStayStrictlyIncreasingUnderAnyTimeSequence() throws {
        var rng = SplitMix64(seed: 7)
        var c = HybridLogicalClock()
        var last = HLC.zero
        for _ in 0..<20_000 {
            let pt = Int64(1_000 + rng.next() % 50)
            let t = rng.next() % 3 == 0 ? try c.receive(HLC(millis: pt + Int64(rng.next() % 20), counter: Int(rng.next() % 65_536)), physicalMillis: pt)
                : try c.tick(physicalMillis: pt)
            #expect(t > last)
            last = t
        }
    }
}
