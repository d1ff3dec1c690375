import Glibc
import SluiceExecution

/// A streaming program's configuration (Spark's `SparkConf`): Spark's keys with Spark's meanings and defaults
/// (`spark.master`, `spark.streaming.*`, ...) and Sluice's own `sluice.*` keys.
///
/// Values are text, as in Spark; they are checked when a ``StreamingContext`` is made (or when a properties
/// file is read): a bad value is a ``ConfigurationError`` naming the key, the value and the accepted form.
/// Durations take Spark's forms (`200ms`, `2s`, `1min`), sizes `512m` or `2g`. An unknown `spark.*` or
/// `sluice.*` key is not an error but a warning (see ``warnings``) naming the nearest known key.
public struct StreamingConf: Sendable, CustomStringConvertible {
    private var settings: [String: String] = [:]
    /// An error from reading the file named by `SLUICE_CONF`, raised when a context is made from this conf.
    private var loadError: ConfigurationError?

    /// A configuration with Spark's defaults, plus the properties file named by the environment variable
    /// `SLUICE_CONF`, if it is set.
    public init() {
        self.init(environment: { getenv($0).map { String(cString: $0) } })
    }

    /// A configuration with Spark's defaults, plus the properties file that `environment` names as
    /// `SLUICE_CONF` (tests pass their own, since the process environment is shared by tests running at once).
    init(environment: (String) -> String?) {
        guard let path = environment("SLUICE_CONF"), !path.isEmpty else { return }
        do {
            self = try StreamingConf(propertiesFile: path)
        } catch let error as ConfigurationError {
            loadError = error
        } catch {
            loadError = ConfigurationError(key: "SLUICE_CONF", value: path, expected: "a readable properties file")
        }
    }

    /// A configuration read from a spark-defaults style file: one `key value` or `key=value` per line, `#`
    /// comments, blank lines.
    /// - Throws: ``ConfigurationError`` naming the file and line of a line that is not a setting, or the key,
    ///   value and accepted form of a bad value.
    public init(propertiesFile path: String) throws {
        let text = try Self.read(path)
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix("!") { continue }
            guard let cut = line.firstIndex(where: { $0 == "=" || $0 == ":" || $0 == " " || $0 == "\t" }) else {
                throw ConfigurationError(
                    key: "line \(number + 1) of '\(path)'", value: line, expected: "a line 'key value' or 'key=value'")
            }
            let key = String(line[..<cut]).trimmingCharacters
            var rest = line[line.index(after: cut)...].trimmingCharacters
            if rest.hasPrefix("=") || rest.hasPrefix(":") { rest = String(rest.dropFirst()).trimmingCharacters }
            settings[key] = rest
        }
        try validate()
    }

    private static func read(_ path: String) throws(ConfigurationError) -> String {
        guard let file = fopen(path, "r") else {
            throw ConfigurationError(
                key: "properties file", value: path,
                expected: "a readable file (\(String(cString: strerror(errno))))")
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4_096)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The configuration with `key` set to `value`.
    public func set(_ key: String, _ value: String) -> StreamingConf {
        var copy = self
        copy.settings[key] = value
        return copy
    }

    /// Sets `spark.master` (`local`, `local[n]`, `local[*]`).
    public func setMaster(_ master: String) -> StreamingConf { set("spark.master", master) }

    /// Sets `spark.app.name`.
    public func setAppName(_ name: String) -> StreamingConf { set("spark.app.name", name) }

    /// The value of `key`: as set, else Spark's default for a known key, else nil.
    public func get(_ key: String) -> String? {
        settings[key] ?? ConfigKeys.byName[key]?.defaultValue
    }

    /// Whether `key` was set (rather than left to its default).
    public func contains(_ key: String) -> Bool { settings[key] != nil }

    /// Every key that was set, with its value, sorted by key.
    public var all: [(key: String, value: String)] { settings.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }

    /// Warnings about the settings: each unknown `spark.*` or `sluice.*` key, with the nearest known key.
    public var warnings: [String] {
        settings.keys.sorted().compactMap { key in
            guard ConfigKeys.byName[key] == nil, key.hasPrefix("spark.") || key.hasPrefix("sluice.") else { return nil }
            let nearest = ConfigKeys.nearest(to: key).map { "; did you mean \($0)?" } ?? ""
            return "unknown configuration key \(key) (ignored)\(nearest)"
        }
    }

    /// Checks every known key's value.
    /// - Throws: ``ConfigurationError`` for the first bad value (keys in order), or the error of reading
    ///   `SLUICE_CONF`.
    public func validate() throws(ConfigurationError) {
        if let loadError { throw loadError }
        for (key, value) in settings.sorted(by: { $0.key < $1.key }) {
            guard let known = ConfigKeys.byName[key] else { continue }
            try check(known, value)
        }
        if let master = settings["spark.master"] { _ = try Master.workers(for: master) }
    }

    private func check(_ key: ConfigKey, _ value: String) throws(ConfigurationError) {
        let error = ConfigurationError(key: key.name, value: value, expected: key.kind.form)
        switch key.kind {
        case .duration(let unit): guard ConfigValues.milliseconds(value, defaultUnit: unit) != nil else { throw error }
        case .size(let minimum): guard let n = ConfigValues.bytes(value), n >= minimum else { throw error }
        case .int(let minimum, let maximum):
            guard let n = Int(value.trimmingCharacters), n >= minimum, n <= maximum else { throw error }
        case .double(let minimum): guard let x = Double(value.trimmingCharacters), x >= minimum else { throw error }
        case .bool: guard ["true", "false"].contains(value.trimmingCharacters.lowercased()) else { throw error }
        case .choice(let words): guard words.contains(value.trimmingCharacters) else { throw error }
        case .text: break
        }
    }

    // MARK: Typed reads (values were validated when the context was made)

    func duration(_ key: String) throws(ConfigurationError) -> Duration? {
        try durationCount(key, ConfigValues.milliseconds, formUnit: "ms").map { .milliseconds($0) }
    }

    /// A duration key read to the microsecond (``duration(_:)`` reads milliseconds).
    func microseconds(_ key: String) throws(ConfigurationError) -> Int64? {
        try durationCount(key, ConfigValues.microseconds, formUnit: "us")
    }

    /// Duration key `key`'s value counted by `read` (milliseconds or microseconds), or nil when unset.
    private func durationCount(
        _ key: String, _ read: (String, String) -> Int64?, formUnit: String
    ) throws(ConfigurationError) -> Int64? {
        guard let value = get(key) else { return nil }
        guard case .duration(let unit) = ConfigKeys.byName[key]?.kind, let count = read(value, unit) else {
            throw ConfigurationError(
                key: key, value: value, expected: ConfigValueKind.duration(defaultUnit: formUnit).form)
        }
        return count
    }

    func bytes(_ key: String) throws(ConfigurationError) -> Int? {
        guard let value = get(key) else { return nil }
        guard let n = ConfigValues.bytes(value) else {
            throw ConfigurationError(key: key, value: value, expected: ConfigValueKind.size().form)
        }
        return n
    }

    func int(_ key: String) throws(ConfigurationError) -> Int? {
        guard let value = get(key) else { return nil }
        guard let n = Int(value.trimmingCharacters) else {
            throw ConfigurationError(key: key, value: value, expected: ConfigValueKind.int(minimum: 0).form)
        }
        return n
    }

    func double(_ key: String) throws(ConfigurationError) -> Double? {
        guard let value = get(key) else { return nil }
        guard let x = Double(value.trimmingCharacters) else {
            throw ConfigurationError(key: key, value: value, expected: ConfigValueKind.double(minimum: 0).form)
        }
        return x
    }

    /// The boolean value of `key` (its default when unset; false without one).
    /// - Throws: ``ConfigurationError`` naming the key when the value is not true or false.
    public func bool(_ key: String) throws(ConfigurationError) -> Bool {
        guard let value = get(key) else { return false }
        switch value.trimmingCharacters.lowercased() {
        case "true": return true
        case "false": return false
        default: throw ConfigurationError(key: key, value: value, expected: ConfigValueKind.bool.form)
        }
    }

    public var description: String {
        all.map { "\($0.key)=\($0.value)" }.joined(separator: "\n")
    }
}

extension StringProtocol {
    var trimmingCharacters: String {
        let scalars = String(self).unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}
