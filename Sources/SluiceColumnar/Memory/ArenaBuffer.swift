/// A growable byte buffer in pooled, 64-byte aligned memory, with value semantics (copy-on-write).
///
/// The building material of columns, blocks, serialized rows and compressed frames. Growth doubles the capacity
/// through the buffer's ``BufferPool``; `removeAll(keepingCapacity:)` keeps the memory for the next batch.
/// A growth that the allocator cannot serve is recorded, not a trap: that write and every later one are left
/// out, and ``allocationFailure`` / ``checkAllocation()`` say so, for the owner (a column, a block builder, a
/// binary writer) to throw before the bytes are used. Sizes a caller plans ahead go through the throwing
/// ``init(minimumCapacity:pool:)`` and ``reserveCapacity(_:)``.
public struct ArenaBuffer: Sendable {
    @usableFromInline var storage: ArenaStorage
    @usableFromInline var _count: Int
    /// The bytes a growth could not get (0: every write so far went in); cleared by `removeAll`.
    @usableFromInline var _refusedBytes = 0
    /// The number of bytes written.
    public var count: Int { _count }

    /// The bytes this buffer can hold before it grows.
    public var capacity: Int { storage.capacity }

    /// An empty buffer with room for at least `minimumCapacity` bytes.
    /// - Throws: ``MemoryError`` when the allocator has no memory.
    public init(minimumCapacity: Int = 0, pool: BufferPool = .shared) throws(MemoryError) {
        try self.init(minimumCapacity: minimumCapacity, headroom: 0, pool: pool)
    }

    /// An empty buffer with room for at least `minimumCapacity` bytes, and `headroom` bytes of its allocation
    /// kept free in front of them, through every growth: room for a block's header, so that a block can be
    /// sealed where its one column was written (see `BlockBuilder.sealTakingBuffers()`).
    /// - Throws: ``MemoryError`` when the allocator has no memory.
    init(minimumCapacity: Int, headroom: Int, pool: BufferPool) throws(MemoryError) {
        guard let storage = pool.takeStorage(minimumCapacity: minimumCapacity, headroom: headroom) else {
            throw MemoryError(.allocationFailed(bytes: minimumCapacity + headroom))
        }
        self.storage = storage
        self._count = 0
    }

    init(storage: ArenaStorage, count: Int) {
        self.storage = storage
        self._count = count
    }

    /// The pool the buffer's memory comes from.
    public var pool: BufferPool { storage.pool }

    /// Makes sure `minimumCapacity` bytes fit without growing, and that the storage is this value's own.
    /// - Throws: ``MemoryError`` when the allocator has no memory.
    public mutating func reserveCapacity(_ minimumCapacity: Int) throws(MemoryError) {
        if minimumCapacity <= storage.capacity && isKnownUniquelyReferenced(&storage) { return }
        try reallocate(capacity: max(minimumCapacity, count))
    }

    private mutating func reallocate(capacity: Int) throws(MemoryError) {
        guard let fresh = storage.pool.takeStorage(minimumCapacity: capacity, headroom: storage.headroom) else {
            throw MemoryError(.allocationFailed(bytes: capacity))
        }
        // Safe: both regions hold at least `count` bytes and are distinct allocations.
        fresh.pointer.copyMemory(from: storage.pointer, byteCount: count)
        storage = fresh
    }

    /// Makes `extra` bytes writable at the end; false (and the failure recorded) when the allocator cannot
    /// serve the growth or an earlier growth failed: the caller then leaves its write out. The check is
    /// inlined, growth is not.
    @inlinable @inline(__always)
    mutating func makeRoom(for extra: Int) -> Bool {
        if _count &+ extra <= storage.capacity && _refusedBytes == 0 && isKnownUniquelyReferenced(&storage) {
            return true
        }
        return grow(for: extra)
    }

    @usableFromInline @inline(never)
    mutating func grow(for extra: Int) -> Bool {
        guard _refusedBytes == 0 else { return false }
        let needed = count + extra
        let target = needed <= storage.capacity ? storage.capacity : max(needed, storage.capacity * 2)
        do {
            try reallocate(capacity: target)
            return true
        } catch {
            _refusedBytes = target
            return false
        }
    }

    /// Why writes were left out, when a growth could not get memory (nil: every write went in).
    public var allocationFailure: MemoryError? {
        _refusedBytes == 0 ? nil : MemoryError(.allocationFailed(bytes: _refusedBytes))
    }

    /// - Throws: ``allocationFailure``, when there is one.
    public func checkAllocation() throws(MemoryError) {
        if let allocationFailure { throw allocationFailure }
    }

    /// Appends `bytes`.
    @inlinable @inline(__always)
    public mutating func append(contentsOf bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        guard n > 0, let base = bytes.baseAddress, makeRoom(for: n) else { return }
        // Safe: makeRoom guaranteed count + n <= capacity on a uniquely owned storage.
        copyBytes(to: storage.pointer + _count, from: base, count: n)
        _count &+= n
    }

    /// Appends the bytes of a fixed-width value in native (little-endian) layout.
    @inlinable @inline(__always)
    public mutating func append<T: BitwiseCopyable>(raw value: T) {
        let size = MemoryLayout<T>.size
        guard makeRoom(for: size) else { return }
        // Safe: room was made for `size` bytes at `count`.
        (storage.pointer + _count).storeBytes(of: value, as: T.self)
        _count &+= size
    }

    /// Appends `value` in little-endian byte order.
    @inlinable
    public mutating func append<T: FixedWidthInteger & BitwiseCopyable>(littleEndian value: T) {
        append(raw: value.littleEndian)
    }

    /// Appends `byteCount` zero bytes.
    public mutating func appendZeros(_ byteCount: Int) {
        guard byteCount > 0, makeRoom(for: byteCount) else { return }
        // Safe: room was made for `byteCount` bytes at `count`.
        (storage.pointer + count).initializeMemory(as: UInt8.self, repeating: 0, count: byteCount)
        _count += byteCount
    }

    /// Appends zero bytes until `count` is a multiple of `alignment` (a power of two).
    public mutating func pad(toMultipleOf alignment: Int) {
        let remainder = count & (alignment - 1)
        if remainder != 0 { appendZeros(alignment - remainder) }
    }

    /// Lets `body` write into `extra` new bytes at the end, then counts the `written` bytes it reports.
    /// Without memory for them `body` is not called (see ``allocationFailure``): callers that cannot check
    /// afterwards reserve the room first with ``reserveCapacity(_:)``.
    /// - Parameter body: writes into the buffer and returns how many bytes it wrote (at most `extra`).
    public mutating func appendWithUnsafeBytes<E: Error>(
        reserving extra: Int, _ body: (UnsafeMutableRawBufferPointer) throws(E) -> Int
    ) throws(E) {
        guard makeRoom(for: extra) else { return }
        let written = try body(UnsafeMutableRawBufferPointer(start: storage.pointer + count, count: extra))
        precondition(written >= 0 && written <= extra, "appendWithUnsafeBytes wrote \(written) of \(extra) bytes")
        _count += written
    }

    /// Overwrites `value` in little-endian order at `offset`, which must lie within the written bytes.
    public mutating func set<T: FixedWidthInteger>(littleEndian value: T, at offset: Int) {
        precondition(offset >= 0 && offset + MemoryLayout<T>.size <= count, "write past the end of a buffer")
        guard makeRoom(for: 0) else { return }
        // Safe: the range was checked against count <= capacity on a uniquely owned storage.
        (storage.pointer + offset).storeBytes(of: value.littleEndian, as: T.self)
    }

    /// Forgets the bytes; with `keepingCapacity` the memory stays for the next use.
    public mutating func removeAll(keepingCapacity: Bool = true) {
        _refusedBytes = 0
        if keepingCapacity && isKnownUniquelyReferenced(&storage) {
            _count = 0
        } else if let fresh = storage.pool.takeStorage(minimumCapacity: 0, headroom: storage.headroom) {
            storage = fresh
            _count = 0
        } else {
            _count = 0
            _ = makeRoom(for: 0)  // a failure is recorded
        }
    }

    /// Calls `body` with the written bytes. The pointer must not escape `body`.
    @inlinable
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: storage.pointer, count: count))
    }

    /// Calls `body` with the written bytes, mutable. The pointer must not escape `body`.
    public mutating func withUnsafeMutableBytes<R, E: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        // Without memory for a private copy, `body` sees no bytes rather than another value's (see
        // ``allocationFailure``).
        guard makeRoom(for: 0) else { return try body(UnsafeMutableRawBufferPointer(start: nil, count: 0)) }
        return try body(UnsafeMutableRawBufferPointer(start: storage.pointer, count: count))
    }

    /// The written bytes as an array (a copy; for tests and small values).
    public var bytes: [UInt8] {
        withUnsafeBytes { Array($0) }
    }

}

extension ArenaBuffer {
    /// A buffer holding a copy of `bytes`.
    /// - Throws: ``MemoryError`` when the allocator has no memory.
    public init(copying bytes: some Collection<UInt8>, pool: BufferPool = .shared) throws(MemoryError) {
        try self.init(minimumCapacity: bytes.count, pool: pool)
        let copied: Void? = bytes.withContiguousStorageIfAvailable { append(contentsOf: UnsafeRawBufferPointer($0)) }
        if copied == nil {
            for b in bytes { append(littleEndian: b) }
        }
        try checkAllocation()
    }
}

extension ArenaBuffer {
    /// Appends bit number `index` of a bit-packed sequence (bit i lives in byte i/8), adding a byte every 8 bits.
    @inlinable
    mutating func appendBit(_ bit: Bool, index: Int) {
        if index & 7 == 0 {
            append(littleEndian: UInt8(bit ? 1 : 0))
        } else if bit {
            guard makeRoom(for: 0) else { return }
            // Safe: bit `index` lives in the last byte, which was appended for bit index & ~7.
            let byte = storage.pointer + (count - 1)
            byte.storeBytes(of: byte.load(as: UInt8.self) | UInt8(1 << (index & 7)), as: UInt8.self)
        }
    }

    /// The bytes from `offset` of length `length` as a slice that shares this buffer's storage.
    func slice(offset: Int = 0, length: Int? = nil) -> BufferSlice {
        BufferSlice(storage: storage, offset: offset, length: length ?? count)
    }
}

extension ArenaBuffer {
    /// Drops the bytes past `newCount` (which must not exceed `count`).
    public mutating func truncate(to newCount: Int) {
        precondition(newCount >= 0 && newCount <= count, "truncate to \(newCount) of \(count) bytes")
        _count = newCount
    }
}

/// Copies `count` bytes: runs of up to 64 bytes (words and lines of text) by 8-byte loads and stores, the last
/// ones overlapping those before, with no loop (which the compiler turns back into a call to memmove, costing
/// more than the copy); longer ones by memcpy. The caller guarantees both ranges are valid and distinct.
@inlinable @inline(__always)
func copyBytes(to target: UnsafeMutableRawPointer, from source: UnsafeRawPointer, count: Int) {
    // Safe (every branch): each load and store lies within the first `count` bytes of its range.
    @inline(__always) func copy8(_ offset: Int) {
        target.storeBytes(
            of: source.loadUnaligned(fromByteOffset: offset, as: UInt64.self), toByteOffset: offset, as: UInt64.self)
    }
    @inline(__always) func copy16(_ offset: Int) {
        copy8(offset)
        copy8(offset &+ 8)
    }
    if count > 64 {
        target.copyMemory(from: source, byteCount: count)
    } else if count > 32 {
        copy16(0)
        copy16(16)
        copy16(count &- 32)
        copy16(count &- 16)
    } else if count > 16 {
        copy16(0)
        copy16(count &- 16)
    } else if count >= 8 {
        copy8(0)
        copy8(count &- 8)
    } else {
        for i in 0..<count {
            target.storeBytes(of: source.load(fromByteOffset: i, as: UInt8.self), toByteOffset: i, as: UInt8.self)
        }
    }
}
