import SluiceTesting
import Testing

@testable import Sluice

/// Runs the batches at `seconds` (batch time in seconds) on `clock`, each to its end.
func runSeconds(_ ssc: StreamingContext, _ clock: ManualClock, _ seconds: ClosedRange<Int64>) {
    for second in seconds {
        clock.set(to: Time(milliseconds: second * 1_000))
        #expect(ssc.waitUntilBatchHandled(Time(milliseconds: second * 1_000), timeout: .seconds(60)))
    }
}

/// Starts `ssc`, runs its first batch with `cluster`'s broker up, calls `between`, runs the second with the broker
/// down (for good), and stops: the context's error.
func errorWithTheBrokerDown(
    _ ssc: StreamingContext, _ clock: ManualClock, _ cluster: KafkaMockCluster, between: () throws -> Void = {}
) throws -> (any Error)? {
    try ssc.start()
    runSeconds(ssc, clock, 1...1)
    #expect(ssc.error == nil)
    try between()
    cluster.takeDown()
    runSeconds(ssc, clock, 2...2)
    ssc.stop()
    return ssc.error
}
