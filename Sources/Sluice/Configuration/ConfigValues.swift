/// Reading Spark's value forms: durations ("200ms", "2s", "1min") and sizes ("512m", "2g").
package enum ConfigValues {
    /// Milliseconds in `text`, a number with an optional unit (us, ms, s, m, min, h, d); a bare number is in
    /// `defaultUnit`.
    package static func milliseconds(_ text: String, defaultUnit: String) -> Int64? {
        duration(text, defaultUnit: defaultUnit, perMillisecond: 1)
    }

    /// Microseconds in `text`, as ``milliseconds(_:defaultUnit:)`` reads it: for the few keys finer than a
    /// millisecond.
    package static func microseconds(_ text: String, defaultUnit: String) -> Int64? {
        duration(text, defaultUnit: defaultUnit, perMillisecond: 1_000)
    }

    private static func duration(_ text: String, defaultUnit: String, perMillisecond: Double) -> Int64? {
        let (number, unit) = split(text.lowercased())
        guard let value = Double(number), value >= 0 else { return nil }
        let perUnit: Double
        switch unit.isEmpty ? defaultUnit : unit {
        case "us", "microsecond", "microseconds": perUnit = 0.001
        case "ms", "millisecond", "milliseconds": perUnit = 1
        case "s", "sec", "second", "seconds": perUnit = 1_000
        case "m", "min", "minute", "minutes": perUnit = 60_000
        case "h", "hour", "hours": perUnit = 3_600_000
        case "d", "day", "days": perUnit = 86_400_000
        default: return nil
        }
        let scaled = value * perUnit * perMillisecond
        guard scaled < 9e15 else { return nil }
        return Int64(scaled.rounded())
    }

    /// Bytes in `text`, a number with an optional unit (b, k/kb, m/mb, g/gb, t/tb, p/pb; powers of 1024).
    static func bytes(_ text: String) -> Int? {
        let (number, unit) = split(text.lowercased())
        guard let value = Double(number), value >= 0 else { return nil }
        let exponent: Double
        switch unit {
        case "", "b": exponent = 0
        case "k", "kb", "kib": exponent = 1
        case "m", "mb", "mib": exponent = 2
        case "g", "gb", "gib": exponent = 3
        case "t", "tb", "tib": exponent = 4
        case "p", "pb", "pib": exponent = 5
        default: return nil
        }
        let total = value * pow1024(exponent)
        guard total < 9e18 else { return nil }
        return Int(total.rounded())
    }

    private static func pow1024(_ e: Double) -> Double {
        var r = 1.0
        for _ in 0..<Int(e) { r *= 1_024 }
        return r
    }

    /// The leading number and the unit after it, spaces trimmed.
    private static func split(_ text: String) -> (String, String) {
        let t = text.filter { $0 != " " }
        guard let cut = t.firstIndex(where: { !($0.isNumber || $0 == ".") }) else { return (t, "") }
        return (String(t[..<cut]), String(t[cut...]))
    }
}
