// A receiver of your own: this one reads lines from standard input and the program counts the words of
// each second's lines. When the input ends, the receiver stops and so does the program.
//
//     printf 'a b\nb c\n' | swift run -c release CustomReceiver
import Glibc
import Sluice
import Synchronization

/// Reads lines from standard input on a thread of its own and stores them one by one.
final class StandardInputReceiver: Receiver<String>, @unchecked Sendable {
    let finished = Mutex(false)

    init() { super.init(storageLevel: .memoryAndDiskSer2) }

    override func onStart() {
        // onStart must not block: read on a thread of our own.
        let thread = Thread { [self] in receive() }
        thread.start()
    }

    override func onStop() {
        // Nothing to release: the reading thread ends when it sees isStopped or the end of the input.
    }

    private func receive() {
        while !isStopped, let line = readLine() {
            do {
                try store(line)
            } catch {
                reportError("could not store a line", error)
                return
            }
        }
        finished.withLock { $0 = true }
    }
}

/// A minimal thread for the example.
final class Thread: Sendable {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    func start() {
        let box = Unmanaged.passRetained(self).toOpaque()
        var handle = pthread_t()
        pthread_create(&handle, nil, { box in
            Unmanaged<Thread>.fromOpaque(box!).takeRetainedValue().body()
            return nil
        }, box)
        pthread_detach(handle)
    }
}

do {
    let ssc = try StreamingContext(conf: StreamingConf().setMaster("local[2]"), batchDuration: .seconds(1))
    let receiver = StandardInputReceiver()
    let counts = ssc.receiverStream(receiver).flatMap { $0.split(ascii: " ") }.map { ($0, 1) }.reduceByKey(+)
    counts.print()
    try ssc.start()
    // Stop once the input has ended and a last batch has taken what was read.
    while !receiver.finished.withLock({ $0 }) { _ = try ssc.awaitTerminationOrTimeout(.milliseconds(100)) }
    ssc.stop(gracefully: true)
} catch {
    print("CustomReceiver: \(error)")
}
