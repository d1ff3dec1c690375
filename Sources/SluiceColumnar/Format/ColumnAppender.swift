/// Appends fixed-width values to a column through raw cursors: ownership of the memory is checked once per
/// scope (``ColumnBuilder/withAppender(of:_:)``), not once per value, so a producer's loop runs at memory
/// speed. Non-copyable: a copy would write through the same cursor.
public struct ValueAppender<T: FixedWidthColumnValue>: ~Copyable {
    @usableFromInline var buffer: ArenaBuffer
    @usableFromInline var cursor: UnsafeMutableRawPointer
    @usableFromInline var limit: UnsafeMutableRawPointer
    @usableFromInline var _appended = 0
    /// Values appended in this scope.
    public var appended: Int { _appended }

    init(_ buffer: consuming ArenaBuffer) {
        let room = buffer.makeRoom(for: MemoryLayout<T>.stride * 64)
        let base = buffer.storage.pointer
        self.cursor = base + buffer.count
        self.limit = room ? base + buffer.capacity : cursor  // no memory: every append goes to refill, which refuses
        self.buffer = buffer
    }

    /// Appends one value.
    @inlinable @inline(__always)
    public mutating func append(_ value: T) {
        if limit - cursor < MemoryLayout<T>.stride {
            guard refill() else { return }  // no memory: left out, and the buffer says so
        }
        // Safe: at least one stride lies between cursor and limit, in memory this appender owns.
        cursor.storeBytes(of: value, as: T.self)
        cursor += MemoryLayout<T>.stride
        _appended &+= 1
    }

    /// Appends `count` values, each the next `make()` returns; if `make` throws, the values it made before
    /// stay appended. The loop keeps its cursor in a register: one ``append(_:)`` after another keeps it in
    /// this appender, and the compiler reloads it (and the count) after each value's store, which could have
    /// written them, so that each append waits for the previous one's (a third of the grouped workload's
    /// generator).
    @inlinable
    public mutating func append<E: Error>(count: Int, _ make: () throws(E) -> T) throws(E) {
        var left = count
        while left > 0 {
            if limit - cursor < MemoryLayout<T>.stride {
                guard refill() else { return }  // no memory: left out, and the buffer says so
            }
            var at = cursor
            defer {
                _appended &+= (at - cursor) / MemoryLayout<T>.stride
                cursor = at
            }
            // Safe: n strides fit between cursor and limit, in memory this appender owns.
            let n = min(left, (limit - cursor) / MemoryLayout<T>.stride)
            for _ in 0..<n {
                at.storeBytes(of: try make(), as: T.self)
                at += MemoryLayout<T>.stride
            }
            left &-= n
        }
    }

    /// Makes room for more values; false when the allocator cannot (the buffer records it).
    @usableFromInline @inline(never)
    mutating func refill() -> Bool {
        let base = buffer.storage.pointer
        buffer._count = cursor - base
        guard buffer.makeRoom(for: max(buffer.capacity, MemoryLayout<T>.stride * 64)) else {
            limit = cursor
            return false
        }
        let fresh = buffer.storage.pointer
        cursor = fresh + buffer.count
        limit = fresh + buffer.capacity
        return true
    }

    consuming func finish() -> ArenaBuffer {
        buffer._count = cursor - buffer.storage.pointer
        return buffer
    }
}

/// Appends `string` or `binary` rows through raw cursors (see ``ValueAppender``).
public struct BytesAppender: ~Copyable {
    @usableFromInline var data: ArenaBuffer
    @usableFromInline var offsets: ArenaBuffer
    @usableFromInline var dataBase: UnsafeMutableRawPointer
    @usableFromInline var dataCursor: UnsafeMutableRawPointer
    @usableFromInline var dataLimit: UnsafeMutableRawPointer
    @usableFromInline var offsetCursor: UnsafeMutableRawPointer
    @usableFromInline var offsetLimit: UnsafeMutableRawPointer
    @usableFromInline var _appended = 0
    @usableFromInline let maxDataBytes: Int
    /// Set when a row would have taken the data past `maxDataBytes` (that row and later ones are left out).
    @usableFromInline var overflowed = false
    /// Rows appended in this scope.
    public var appended: Int { _appended }

    init(data: consuming ArenaBuffer, offsets: consuming ArenaBuffer, maxDataBytes: Int) {
        self.maxDataBytes = maxDataBytes
        let room = data.makeRoom(for: 1024) && offsets.makeRoom(for: 256)
        dataBase = data.storage.pointer
        dataCursor = dataBase + data.count
        dataLimit = dataBase + min(data.capacity, maxDataBytes)
        offsetCursor = offsets.storage.pointer + offsets.count
        offsetLimit = room ? offsets.storage.pointer + offsets.capacity : offsetCursor  // refill refuses
        self.data = data
        self.offsets = offsets
    }

    /// Appends one row's bytes.
    @inlinable @inline(__always)
    public mutating func append(bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        if dataLimit - dataCursor < n || offsetLimit - offsetCursor < 4 {
            guard refill(n) else { return }
        }
        if let source = bytes.baseAddress { copyBytes(to: dataCursor, from: source, count: n) }
        dataCursor += n
        // Safe: refill guaranteed room for n data bytes and one offset; the data stays under 4 GiB.
        offsetCursor.storeBytes(of: UInt32(truncatingIfNeeded: dataCursor - dataBase).littleEndian, as: UInt32.self)
        offsetCursor += 4
        _appended &+= 1
    }

    /// Appends `ends.count` rows whose bytes lie end to end from `bytes`: row k ends `ends[k] - origin` bytes after
    /// `bytes` (and starts where row k - 1 ends, the first at `bytes`), so `ends` may be positions in a larger
    /// buffer of which `bytes` is position `origin`. The rows' bytes go in one copy: what a source holding rows
    /// contiguously (the generator's pool of lines) pays per row is then one offset, not a copy call.
    /// The ends must not decrease, nor the first be below `origin`.
    @inlinable
    public mutating func append(rows ends: UnsafeBufferPointer<Int>, from bytes: UnsafeRawPointer, origin: Int) {
        guard let last = ends.last else { return }
        let n = last &- origin
        guard dataLimit - dataCursor >= n, offsetLimit - offsetCursor >= 4 &* ends.count else {
            // Out of room: row by row, each refilling (or left out, past maxDataBytes) as append(bytes:) does.
            var start = origin
            for end in ends {
                append(bytes: UnsafeRawBufferPointer(start: bytes + (start &- origin), count: end &- start))
                start = end
            }
            return
        }
        copyBytes(to: dataCursor, from: bytes, count: n)
        // Safe: room for n data bytes and ends.count offsets was checked above; the data stays under 4 GiB.
        let first = (dataCursor - dataBase) &- origin
        for end in ends {
            offsetCursor.storeBytes(of: UInt32(truncatingIfNeeded: first &+ end).littleEndian, as: UInt32.self)
            offsetCursor += 4
        }
        dataCursor += n
        _appended &+= ends.count
    }

    /// Appends one `string` row.
    @inlinable @inline(__always)
    public mutating func append(_ string: String) {
        withUTF8Bytes(of: string) { append(bytes: $0) }
    }

    /// Makes room for a row of `n` bytes; false (and `overflowed`) when it would pass `maxDataBytes`.
    @usableFromInline @inline(never)
    mutating func refill(_ n: Int) -> Bool {
        data._count = dataCursor - dataBase
        offsets._count = offsetCursor - offsets.storage.pointer
        guard !overflowed, data.count + n <= maxDataBytes else {
            overflowed = true
            return false
        }
        // Each buffer doubles only when it is the one out of room: growing both whenever either filled doubled
        // the other every time (a builder that keeps its offsets while its bytes go out with each sealed block
        // then doubled its offsets block after block).
        let dataFull = dataLimit - dataCursor < n
        let offsetsFull = offsetLimit - offsetCursor < 4
        guard !dataFull || data.makeRoom(for: max(n, data.capacity)),
            !offsetsFull || offsets.makeRoom(for: max(4, offsets.capacity))
        else {
            offsetLimit = offsetCursor  // no memory: this and later rows are left out; the buffers say so
            return false
        }
        dataBase = data.storage.pointer
        dataCursor = dataBase + data.count
        dataLimit = dataBase + min(data.capacity, maxDataBytes)
        offsetCursor = offsets.storage.pointer + offsets.count
        offsetLimit = offsets.storage.pointer + offsets.capacity
        return true
    }

    consuming func finish() -> (data: ArenaBuffer, offsets: ArenaBuffer, overflowed: Bool) {
        data._count = dataCursor - dataBase
        offsets._count = offsetCursor - offsets.storage.pointer
        return (data, offsets, overflowed)
    }
}

extension ColumnBuilder {
    /// Runs `body` with an appender of present fixed-width values: the fast path for a producer with many
    /// values at once (a generator, a decoder, a vectorized operator).
    public mutating func withAppender<T: FixedWidthColumnValue, R, E: Error>(
        of type: T.Type, _ body: (inout ValueAppender<T>) throws(E) -> R
    ) throws(E) -> R {
        precondition(T.columnKind == self.type.kind, "\(T.self) appended to a \(self.type.kind) column")
        var appender = ValueAppender<T>(takeValues())
        let result = capture { () throws(E) in try body(&appender) }
        let added = appender.appended
        values = appender.finish()
        markAppended(added)
        return try result.get()
    }

    /// Runs `body` with an appender of present `string`/`binary` rows (see ``withAppender(of:_:)``).
    public mutating func withBytesAppender<R, E: Error>(_ body: (inout BytesAppender) throws(E) -> R) throws(E) -> R {
        precondition(type.kind.isVariableWidth, "bytes appended to a \(type.kind) column")
        var appender = BytesAppender(data: takeData(), offsets: takeValues(), maxDataBytes: overflowed ? 0 : maxDataBytes)
        let result = capture { () throws(E) in try body(&appender) }
        let added = appender.appended
        let overflow: Bool
        (data, values, overflow) = appender.finish()
        if overflow { _overflowed = true }
        markAppended(added)
        return try result.get()
    }

    private mutating func takeValues() -> ArenaBuffer {
        let taken = values
        values = ArenaBuffer(storage: ArenaStorage.empty, count: 0)
        return taken
    }

    private mutating func takeData() -> ArenaBuffer {
        let taken = data
        data = ArenaBuffer(storage: ArenaStorage.empty, count: 0)
        return taken
    }

    /// Counts `n` appended rows as present.
    mutating func markAppended(_ n: Int) {
        if type.nullable {
            for _ in 0..<n {
                markPresent()
                _count += 1
            }
        } else {
            _count += n
        }
    }
}

/// Runs `body` and keeps its outcome, so that an appender's buffers go back to the builder before an error
/// is rethrown.
private func capture<R, E: Error>(_ body: () throws(E) -> R) -> Result<R, E> {
    do throws(E) {
        return .success(try body())
    } catch {
        return .failure(error)
    }
}
