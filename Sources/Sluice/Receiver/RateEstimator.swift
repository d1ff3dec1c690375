/// Estimates the rate an input stream should ingest at from how the last batch went (Spark's
/// `RateEstimator`). Backpressure (`spark.streaming.backpressure.enabled`) calls it after every completed
/// batch and pushes the rate it returns to the stream's receivers.
public protocol RateEstimator: Sendable {
    /// The new rate in records per second, or nil to keep the current one.
    /// - Parameters:
    ///   - time: when the batch finished processing (ms since the epoch)
    ///   - elements: the records the batch took from this stream
    ///   - processingDelay: how long the batch's jobs ran (ms)
    ///   - schedulingDelay: how long the batch waited before its first job started (ms)
    mutating func compute(time: Int64, elements: Int, processingDelay: Int64, schedulingDelay: Int64) -> Double?
}

/// The terms of a ``PIDRateEstimator``'s last estimate, for monitoring.
public struct PIDTerms: Sendable, Equatable, Codable {
    /// Records per second the last batch was processed at.
    public var processingRate: Double
    /// The previous rate minus the processing rate.
    public var error: Double
    /// The backlog's rate: scheduling delay × processing rate / batch interval.
    public var historicalError: Double
    /// The error's change per second.
    public var dError: Double
    /// The rate computed (before clamping to the minimum).
    public var unclampedRate: Double

    public init(processingRate: Double, error: Double, historicalError: Double, dError: Double, unclampedRate: Double) {
        self.processingRate = processingRate
        self.error = error
        self.historicalError = historicalError
        self.dError = dError
        self.unclampedRate = unclampedRate
    }
}

/// Spark's PID rate estimator: the new rate is the previous one minus `proportional` × the error between it
/// and the processing rate, `integral` × the backlog (scheduling delay) in rate terms, and `derivative` × the
/// error's change per second, never below `minRate`. The first batch with data only primes it (it returns nil
/// then); batches with no records, no processing time, or a time not after the last are ignored.
public struct PIDRateEstimator: RateEstimator {
    public let batchIntervalMs: Int64
    public let proportional: Double
    public let integral: Double
    public let derivative: Double
    public let minRate: Double

    private var firstRun = true
    private var latestTime: Int64 = -1
    private var latestRate: Double = -1
    private var latestError: Double = -1
    /// The terms of the last estimate returned (nil before the first).
    public private(set) var lastTerms: PIDTerms?

    /// - Throws: ``StreamingError`` (`invalidArgument`) for the values Spark refuses: a batch interval that is
    ///   not positive, a negative gain, a minimum rate that is not positive.
    /// Spark's estimator with the `spark.streaming.backpressure.pid.*` settings of `conf`.
    init(conf: StreamingConf, batchDuration: Duration) throws {
        try self.init(
            batchIntervalMs: batchDuration.wholeMilliseconds,
            proportional: try conf.double("spark.streaming.backpressure.pid.proportional") ?? 1.0,
            integral: try conf.double("spark.streaming.backpressure.pid.integral") ?? 0.2,
            derivative: try conf.double("spark.streaming.backpressure.pid.derived") ?? 0.0,
            minRate: try conf.double("spark.streaming.backpressure.pid.minRate") ?? 100)
    }

    public init(
        batchIntervalMs: Int64, proportional: Double = 1.0, integral: Double = 0.2, derivative: Double = 0.0,
        minRate: Double = 100
    ) throws {
        func refuse(_ message: String) -> StreamingError { StreamingError(.invalidArgument, message) }
        guard batchIntervalMs > 0 else {
            throw refuse("Specified batch interval \(batchIntervalMs) in PIDRateEstimator is invalid.")
        }
        guard proportional >= 0 else {
            throw refuse("Proportional term \(proportional) in PIDRateEstimator should be >= 0.")
        }
        guard integral >= 0 else { throw refuse("Integral term \(integral) in PIDRateEstimator should be >= 0.") }
        guard derivative >= 0 else {
            throw refuse("Derivative term \(derivative) in PIDRateEstimator should be >= 0.")
        }
        guard minRate > 0 else { throw refuse("Minimum rate in PIDRateEstimator should be > 0") }
        self.batchIntervalMs = batchIntervalMs
        self.proportional = proportional
        self.integral = integral
        self.derivative = derivative
        self.minRate = minRate
    }

    public mutating func compute(
        time: Int64, elements: Int, processingDelay: Int64, schedulingDelay: Int64
    ) -> Double? {
        guard time > latestTime, elements > 0, processingDelay > 0 else { return nil }
        let delaySinceUpdate = Double(time - latestTime) / 1000
        let processingRate = Double(elements) / Double(processingDelay) * 1000
        let error = latestRate - processingRate
        let historicalError = Double(schedulingDelay) * processingRate / Double(batchIntervalMs)
        let dError = (error - latestError) / delaySinceUpdate
        let unclamped = latestRate - proportional * error - integral * historicalError - derivative * dError
        let newRate = max(unclamped, minRate)
        latestTime = time
        if firstRun {
            latestRate = processingRate
            latestError = 0
            firstRun = false
            return nil
        }
        latestRate = newRate
        latestError = error
        lastTerms = PIDTerms(
            processingRate: processingRate, error: error, historicalError: historicalError, dError: dError,
            unclampedRate: unclamped)
        return newRate
    }
}
