/// A batch time: milliseconds since the epoch (Spark's `Time`). Batch times are multiples of the batch
/// interval; see ``StreamingContext`` for how the first one is chosen.
public struct Time: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Milliseconds since the epoch.
    public let milliseconds: Int64

    /// The time `milliseconds` after the epoch.
    public init(milliseconds: Int64) { self.milliseconds = milliseconds }

    public static func < (a: Time, b: Time) -> Bool { a.milliseconds < b.milliseconds }

    /// `time` moved by `duration` (whole milliseconds).
    public static func + (time: Time, duration: Duration) -> Time {
        Time(milliseconds: time.milliseconds + duration.wholeMilliseconds)
    }

    /// `time` moved back by `duration` (whole milliseconds).
    public static func - (time: Time, duration: Duration) -> Time {
        Time(milliseconds: time.milliseconds - duration.wholeMilliseconds)
    }

    /// The duration from `b` to `a`.
    public static func - (a: Time, b: Time) -> Duration { .milliseconds(a.milliseconds - b.milliseconds) }

    /// Whether the time is a whole number of `duration`s after the epoch.
    public func isMultiple(of duration: Duration) -> Bool {
        let ms = duration.wholeMilliseconds
        return ms > 0 && milliseconds % ms == 0
    }

    /// Spark's form: "1357008430000 ms".
    public var description: String { "\(milliseconds) ms" }
}

extension Duration {
    /// The duration in whole milliseconds (rounded toward zero).
    public var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000 + attoseconds / 1_000_000_000_000_000
    }

    /// Spark's form of a duration: "500 ms".
    var sparkDescription: String { "\(wholeMilliseconds) ms" }

    /// Whether `self` is a positive whole multiple of `other`.
    func isMultiple(of other: Duration) -> Bool {
        let (a, b) = (wholeMilliseconds, other.wholeMilliseconds)
        return b > 0 && a % b == 0
    }
}

extension Time: Codable {
    /// Milliseconds since the epoch, as a number.
    public init(from decoder: any Decoder) throws {
        self.init(milliseconds: try decoder.singleValueContainer().decode(Int64.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(milliseconds)
    }
}
