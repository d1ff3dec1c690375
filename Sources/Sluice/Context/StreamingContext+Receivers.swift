extension StreamingContext {
    /// A stream fed by `receiver` (a ``Receiver`` subclass of the program's own).
    public func receiverStream<T: Sendable>(_ receiver: Receiver<T>) -> ReceiverInputDStream<T> {
        ReceiverInputDStream(context: self, receiver: receiver, name: "receiverStream")
    }

    /// Lines of text from a TCP server at `host`:`port` (UTF-8, "\n" or "\r\n" ends a line). A refused
    /// connection or a closed one restarts the receiver after `spark.streaming.receiverRestartDelay`, as in
    /// Spark; listeners see each error. A line longer than `sluice.receiver.maxRecordBytes` is reported and
    /// dropped.
    public func socketTextStream(
        _ host: String, _ port: Int, storageLevel: StorageLevel = .memoryAndDiskSer2
    ) -> ReceiverInputDStream<String> {
        let receiver = SocketReceiver<String>(
            textFrom: host, port: port, framing: .lines, storageLevel: storageLevel, maxRecordBytes: maxSocketRecordBytes)
        return ReceiverInputDStream(context: self, receiver: receiver, name: "socketTextStream")
    }

    /// Records from a TCP server at `host`:`port`, cut by `framing` and made by `converter` from each record's
    /// bytes (valid only during the call). A record the converter throws on is reported to listeners (with its
    /// offset in the connection) and skipped.
    public func socketStream<T: Sendable>(
        _ host: String, _ port: Int, framing: SocketFraming = .lines, storageLevel: StorageLevel = .memoryAndDiskSer2,
        converter: @escaping @Sendable (UnsafeRawBufferPointer) throws -> T
    ) -> ReceiverInputDStream<T> {
        let receiver = SocketReceiver(
            host: host, port: port, framing: framing, storageLevel: storageLevel, maxRecordBytes: maxSocketRecordBytes,
            convert: converter)
        return ReceiverInputDStream(context: self, receiver: receiver, name: "socketStream")
    }

    /// `sluice.receiver.maxRecordBytes` (validated when the context was made).
    private var maxSocketRecordBytes: Int { ((try? conf.bytes("sluice.receiver.maxRecordBytes")) ?? nil) ?? 64 << 20 }
}
