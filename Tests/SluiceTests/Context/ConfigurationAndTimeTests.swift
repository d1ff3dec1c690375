import Glibc
import Testing
@testable import Sluice
import SluiceTesting

@Suite struct ConfigurationTests {
    func write(_ text: String, in directory: TemporaryDirectory) -> String {
        let path = "\(directory.path)/sluice.conf"
        let file = fopen(path, "w")
        fputs(text, file)
        fclose(file)
        return path
    }

    @Test func propertiesFilesInSparksForms() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = write("""
            # comment
            spark.master            local[2]
            spark.app.name=Word Count

            spark.streaming.blockInterval = 50ms
            spark.streaming.receiver.maxRate:1000
            ! also a comment
            sluice.memory.limit 512m
            """, in: directory)
        let conf = try StreamingConf(propertiesFile: path)
        #expect(conf.get("spark.master") == "local[2]")
        #expect(conf.get("spark.app.name") == "Word Count")
        #expect(try conf.duration("spark.streaming.blockInterval") == .milliseconds(50))
        #expect(try conf.int("spark.streaming.receiver.maxRate") == 1_000)
        #expect(try conf.bytes("sluice.memory.limit") == 512 << 20)
        #expect(conf.warnings.isEmpty)
    }

    @Test func sparksDefaultsForEveryStreamingKey() throws {
        let conf = StreamingConf()
        #expect(conf.get("spark.streaming.blockInterval") == "200ms")
        #expect(try conf.duration("spark.streaming.blockInterval") == .milliseconds(200))
        #expect(try conf.duration("spark.streaming.receiverRestartDelay") == .milliseconds(2_000))
        #expect(try conf.duration("spark.streaming.receiver.blockStoreTimeout") == .seconds(30))
        #expect(try conf.duration("spark.streaming.fileStream.minRememberDuration") == .seconds(60))
        #expect(try conf.int("spark.streaming.blockQueueSize") == 10)
        #expect(try conf.int("spark.streaming.concurrentJobs") == 1)
        #expect(try conf.double("spark.streaming.backpressure.pid.integral") == 0.2)
        #expect(try conf.bool("spark.streaming.unpersist"))
        #expect(try !conf.bool("spark.streaming.backpressure.enabled"))
        #expect(conf.get("spark.streaming.receiver.maxRate") == nil, "unlimited")
        #expect(conf.get("spark.streaming.gracefulStopTimeout") == nil, "10 batch intervals")
    }

    @Test func durationsAndSizesInSparksForms() {
        for (text, ms) in [("200ms", 200), ("2s", 2_000), ("1min", 60_000), ("1m", 60_000), ("1h", 3_600_000),
            ("1500us", 2), ("0.5s", 500), ("1d", 86_400_000), ("250", 250)] as [(String, Int64)]
        {
            #expect(ConfigValues.milliseconds(text, defaultUnit: "ms") == ms, "\(text)")
        }
        #expect(ConfigValues.milliseconds("30", defaultUnit: "s") == 30_000)
        for bad in ["fast", "-1s", "1 fortnight", "", "1e30s"] {
            #expect(ConfigValues.milliseconds(bad, defaultUnit: "ms") == nil, "\(bad)")
        }
        for (text, bytes) in [("512m", 512 << 20), ("2g", 2 << 30), ("64k", 64 << 10), ("100", 100), ("1kb", 1_024)] {
            #expect(ConfigValues.bytes(text) == bytes, "\(text)")
        }
        #expect(ConfigValues.bytes("lots") == nil)
    }

    /// Keys finer than a millisecond (`sluice.workers.spinWait`) keep their microseconds.
    @Test func durationsToTheMicrosecond() throws {
        for (text, us) in [("50us", 50), ("0", 0), ("1ms", 1_000), ("1.5ms", 1_500), ("2s", 2_000_000), ("7", 7)]
            as [(String, Int64)]
        {
            #expect(ConfigValues.microseconds(text, defaultUnit: "us") == us, "\(text)")
        }
        for bad in ["soon", "-1us", "", "1e30s"] {
            #expect(ConfigValues.microseconds(bad, defaultUnit: "us") == nil, "\(bad)")
        }
        #expect(try StreamingConf().microseconds("sluice.workers.spinWait") == 50, "the default")
        #expect(try StreamingConf().set("sluice.workers.spinWait", "0").microseconds("sluice.workers.spinWait") == 0)
    }

    @Test func aBadValueNamesTheKeyTheValueAndTheAcceptedForm() throws {
        let bad: [(String, String, String)] = [
            ("spark.streaming.blockInterval", "fast", "a duration such as 200ms"),
            ("spark.streaming.concurrentJobs", "0", "a whole number >= 1"),
            ("spark.streaming.unpersist", "yes", "true or false"),
            ("sluice.memory.limit", "lots", "a size such as 512m"),
            ("spark.streaming.backpressure.rateEstimator", "pi", "one of pid"),
            ("spark.master", "spark://cluster:7077", "local[n]"),
            // Numbers past what the setting can use (trapped before: converted unchecked).
            ("sluice.zstd.level", "99999999999", "a whole number from -7 to 22"),
            ("spark.streaming.receiver.writeAheadLog.rollingIntervalSecs", "9223372036854775807", "from 1 to"),
            ("sluice.workers.spinWait", "soon", "a duration such as 200ms"),
            ("sluice.workers.spinWait", "-5us", "a duration such as 200ms"),
        ]
        for (key, value, form) in bad {
            let error = #expect(throws: ConfigurationError.self) {
                _ = try StreamingContext(conf: StreamingConf().set(key, value), batchDuration: .seconds(1))
            }
            #expect(error?.key == key)
            #expect(error?.value == value)
            #expect(error?.description.contains(form) == true, "\(String(describing: error))")
        }
    }

    @Test func aBadLineNamesTheFileAndLine() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = write("spark.master local[2]\njustakeywithoutvalue\n", in: directory)
        let error = #expect(throws: ConfigurationError.self) { _ = try StreamingConf(propertiesFile: path) }
        #expect(error?.key == "line 2 of '\(path)'")
        let missing = #expect(throws: ConfigurationError.self) { _ = try StreamingConf(propertiesFile: "\(path).none") }
        #expect(missing?.description.contains("No such file") == true)
    }

    @Test func unknownKeysAreWarningsNamingTheNearestKnownKey() {
        let conf = StreamingConf().set("spark.streaming.blockIntervall", "100ms").set("sluice.memory.limt", "1g")
            .set("spark.executor.memory", "2g").set("myapp.setting", "x")
        #expect(conf.warnings == [
            "unknown configuration key sluice.memory.limt (ignored); did you mean sluice.memory.limit?",
            "unknown configuration key spark.executor.memory (ignored); did you mean spark.eventLog.dir?",
            "unknown configuration key spark.streaming.blockIntervall (ignored); did you mean spark.streaming.blockInterval?",
        ])
    }

    @Test func theEnvironmentCanNameAPropertiesFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = write("spark.streaming.concurrentJobs 3\n", in: directory)
        // Not the process environment: tests running at the same time would read the file too.
        #expect(StreamingConf(environment: { $0 == "SLUICE_CONF" ? path : nil }).get("spark.streaming.concurrentJobs") == "3")
        let broken = StreamingConf(environment: { $0 == "SLUICE_CONF" ? "\(path).missing" : nil })
        #expect(throws: ConfigurationError.self) { try broken.validate() }
    }
}

@Suite struct TimeTests {
    @Test func timeArithmeticAndSparksForm() {
        let t = Time(milliseconds: 1_500)
        #expect(t + .milliseconds(500) == Time(milliseconds: 2_000))
        #expect(t - .seconds(1) == Time(milliseconds: 500))
        #expect(Time(milliseconds: 3_000) - t == .milliseconds(1_500))
        #expect(t.isMultiple(of: .milliseconds(500)) && !t.isMultiple(of: .seconds(1)))
        #expect("\(t)" == "1500 ms")
        #expect(Duration.seconds(2).wholeMilliseconds == 2_000)
        #expect(Duration.microseconds(1_999).wholeMilliseconds == 1)
    }

    @Test func theFirstBatchIsAtTheNextMultipleOfTheInterval() {
        #expect(JobGenerator.firstBatchTime(now: Time(milliseconds: 12_345), batchDuration: .seconds(1)) == Time(milliseconds: 13_000))
        #expect(JobGenerator.firstBatchTime(now: Time(milliseconds: 13_000), batchDuration: .seconds(1)) == Time(milliseconds: 14_000))
        #expect(JobGenerator.firstBatchTime(now: Time(milliseconds: 0), batchDuration: .milliseconds(20)) == Time(milliseconds: 20))
    }

    @Test func clocks() {
        let manual = ManualClock(startTime: Time(milliseconds: 100))
        manual.advance(by: .milliseconds(50))
        #expect(manual.time == Time(milliseconds: 150))
        manual.set(to: Time(milliseconds: 7))
        #expect(manual.time == Time(milliseconds: 7))
        let system = SystemClock().time.milliseconds
        #expect(abs(system - wallClockMilliseconds()) < 1_000)
        let waiter = ClockWaiter(clock: manual)
        waiter.interrupt()
        #expect(!waiter.wait(until: Time(milliseconds: 1_000)), "an interrupted wait returns at once")
    }
}
