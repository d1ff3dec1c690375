import CSluiceLimits
import SluiceExecution

/// A workload's C floor: the same work done by a hand-written C loop with no engine (Sources/CSluiceLimits, the
/// loops of Benchmarks/Limits/), measured in the same process right after the run, so that a report gives
/// Sluice's figure as a share of what this machine does at best. Machines of one kind differ by 2-3x and this
/// one's speed drifts within a session: a ratio from one run is what to compare, not an absolute figure.
struct CFloor: Encodable {
    /// What the floor counts: "words" or "records".
    let unit: String
    /// The loop's threads (1 or 2: the loops split their input in two at most).
    let threads: Int
    /// The median rate on `threads` threads, per second.
    let perSecond: Double
    /// The median rate on one thread, per second.
    let perSecondOneThread: Double

    /// Words or records of the floor per record of `workload` (nil: the workload has no floor: its job is not
    /// the floor's word count or grouped count).
    static func unitsPerRecord(_ workload: StreamWorkload) -> Int? {
        switch workload {
        case .grouped: 1
        case .wordcount, .socket: workload.wordsPerRecord
        default: nil
        }
    }

    /// Measures the floor of `workload` on as many threads as `master` has workers (at most 2); nil when the
    /// workload has none, or the loop could not run (memory, threads).
    static func measure(for workload: StreamWorkload, master: String) -> CFloor? {
        guard unitsPerRecord(workload) != nil else { return nil }
        let threads = min(2, max(1, (try? Master.workers(for: master)) ?? 2))
        let reps = 3
        func median(_ threads: Int) -> Double? {
            var rates = [Double](repeating: 0, count: reps)
            let status = rates.withUnsafeMutableBufferPointer { rates in
                workload == .grouped
                    ? sluice_limit_grouped_count(20_000_000, Int32(threads), Int32(reps), rates.baseAddress)
                    : sluice_limit_wordcount(20_000_000, Int32(threads), Int32(reps), rates.baseAddress)
            }
            return status == 0 ? rates.sorted()[reps / 2] : nil
        }
        guard let one = median(1), let all = threads == 1 ? one : median(threads) else { return nil }
        return CFloor(unit: workload == .grouped ? "records" : "words", threads: threads, perSecond: all, perSecondOneThread: one)
    }

    /// The floor, and `sluice` (Sluice's own rate in the floor's unit) as a share of it.
    func line(comparing sluice: Double, as what: String) -> String {
        "  C floor             \(formatRate(perSecond)) \(unit)/s on \(threads) thread\(threads == 1 ? "" : "s"), "
            + "\(formatRate(perSecondOneThread)) on 1 (measured after the run): \(what) is "
            + "\(trimmed(sluice / perSecond * 100))% of it"
    }

    /// Sluice's CPU time per word or record against the floor's (one thread's) at the rate a run achieved (nil
    /// when it achieved nothing).
    func costLine(achieved: Double, cpuCores: Double) -> String? {
        guard achieved > 0 else { return nil }
        let sluice = cpuCores / achieved * 1e9
        let floor = 1e9 / perSecondOneThread
        let label = "cost per \(unit.dropLast())"
        return "  " + label + String(repeating: " ", count: max(1, 20 - label.count))
            + "\(trimmed(sluice)) ns of CPU (all threads, the source's included), \(trimmed(sluice / floor))x the "
            + "floor's \(trimmed(floor)) ns on one thread"
    }
}
