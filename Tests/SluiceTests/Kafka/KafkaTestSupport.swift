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

/// Starts `ssc`, runs its first batch with `broker` up, calls `between`, runs the second with the broker stopped,
/// and stops: the context's error. (A broker in a process of its own: librdkafka 2.0.2's mock cluster binds a
/// broker's port again when taking it down, and aborts the whole test process when another test took the port
/// meanwhile, as CI saw.)
func errorWithTheBrokerDown(
    _ ssc: StreamingContext, _ clock: ManualClock, _ broker: NoidaBroker, between: () throws -> Void = {}
) throws -> (any Error)? {
    try ssc.start()
    runSeconds(ssc, clock, 1...1)
    #expect(ssc.error == nil)
    try between()
    broker.stop()
    runSeconds(ssc, clock, 2...2)
    ssc.stop()
    return ssc.error
}
