extension ElementCodecs {
    /// The codec of `type` when it is ``BlockSerializable`` (checked at run time), else `Codable` (its compact
    /// row encoding in one binary column, ``codable(_:)``), or a tuple of such components (found from the tuple's
    /// type metadata), or `nil`.
    ///
    /// For engine code that holds a plain generic `Element` and needs bytes only on some paths (spill,
    /// serialized storage levels, checkpoints), so that types without an encoding still work everywhere else.
    public static func lookup<T>(_ type: T.Type) -> ElementCodec<T>? {
        if let codec = single(type) { return codec }
        guard let elements = tupleElements(of: type) else { return nil }
        var components: [TupleComponent] = []
        var end = 0
        for element in elements {
            guard let component = TupleComponent.make(opening: element.type, after: end), component.offset == element.offset else {
                return nil
            }
            end = component.offset + component.size
            components.append(component)
        }
        guard !components.isEmpty, end == MemoryLayout<T>.size else { return nil }
        return tupleCodec(T.self, components)
    }

    /// The component types and offsets of a tuple type, read from its metadata (Swift's stable ABI: a
    /// pointer-sized kind, 0x301 for tuples, the element count, the labels, then per element its type metadata
    /// and its byte offset, a 32-bit field in a pointer-sized slot); nil for any other type.
    private static func tupleElements<T>(of type: T.Type) -> [(type: Any.Type, offset: Int)]? {
        // Safe: every type's metadata starts with its kind; the rest is read only for tuple metadata, whose
        // layout the ABI fixes, and checked against the tuple's size by the caller.
        let metadata = unsafeBitCast(type as Any.Type, to: UnsafeRawPointer.self)
        guard metadata.load(as: UInt.self) == 0x301 else { return nil }
        let count = metadata.load(fromByteOffset: MemoryLayout<UInt>.stride, as: Int.self)
        guard count > 0, count <= 64 else { return nil }
        let elementsStart = 3 * MemoryLayout<UInt>.stride
        let elementStride = 2 * MemoryLayout<UInt>.stride
        return (0..<count).map { i in
            let at = elementsStart + i * elementStride
            return (
                metadata.load(fromByteOffset: at, as: Any.Type.self),
                Int(metadata.load(fromByteOffset: at + MemoryLayout<UInt>.stride, as: UInt32.self))
            )
        }
    }

    /// The codec of `T` found with the help of a value: a ``BlockSerializable`` type, or a tuple (labelled or
    /// not, e.g. `(String, Int)`) of concrete ``BlockSerializable`` components, stored as their columns side by
    /// side. Swift tuples cannot conform to protocols and their component types cannot be named from a generic
    /// `T`, so the components are found by reflecting on `sample`.
    public static func lookup<T>(_ type: T.Type, sample: T) -> ElementCodec<T>? {
        if let codec = lookup(type) { return codec }
        let mirror = Mirror(reflecting: sample)
        guard mirror.displayStyle == .tuple else { return nil }
        var components: [TupleComponent] = []
        var end = 0
        for child in mirror.children {
            guard let component = TupleComponent.make(opening: Swift.type(of: child.value), after: end) else { return nil }
            end = component.offset + component.size
            components.append(component)
        }
        // The components' layout must account for the whole tuple, or a component was not what it seemed.
        guard !components.isEmpty, end == MemoryLayout<T>.size else { return nil }
        return tupleCodec(T.self, components)
    }

    /// The codec of a type that is not a tuple: its ``BlockSerializable`` mapping, else, for a `Codable` type,
    /// ``codable(_:)``; nil for any other type.
    static func single<T>(_ type: T.Type) -> ElementCodec<T>? {
        if let serializable = type as? any BlockSerializable.Type { return opened(serializable, as: type) }
        if let codable = type as? any Codable.Type { return openedCodable(codable, as: type) }
        return nil
    }

    private static func opened<S: BlockSerializable, T>(_: S.Type, as: T.Type) -> ElementCodec<T>? {
        // Opening `T.self as? any BlockSerializable.Type` gives S == T, so this cast always succeeds.
        standard(S.self) as? ElementCodec<T>
    }

    private static func openedCodable<C: Codable, T>(_: C.Type, as: T.Type) -> ElementCodec<T>? {
        // As in opened(_:as:): C == T.
        codable(C.self) as? ElementCodec<T>
    }

    private static func tupleCodec<T>(_: T.Type, _ components: [TupleComponent]) -> ElementCodec<T> {
        /// Builds a tuple from its components in scratch memory; a failed component undoes the ones before it.
        @Sendable func assemble(_ readComponent: (TupleComponent, UnsafeMutableRawPointer) throws -> Void) throws -> T {
            let tuple = UnsafeMutablePointer<T>.allocate(capacity: 1)
            defer { tuple.deallocate() }
            let raw = UnsafeMutableRawPointer(tuple)
            var done = 0
            do {
                for component in components {
                    try readComponent(component, raw)
                    done += 1
                }
            } catch {
                for component in components.prefix(done) { component.destroy(raw) }
                throw error
            }
            // Safe: every component was initialized at its offset, which together make up the tuple.
            return tuple.move()
        }
        return ElementCodec(
            columnTypes: components.flatMap(\.columnTypes),
            writeColumns: { value, builder in
                try withUnsafePointer(to: value) { p in
                    for component in components { try component.write(UnsafeRawPointer(p), &builder) }
                }
            },
            readColumns: { row in try assemble { component, raw in try component.read(&row, raw) } },
            encode: { value, writer in
                try withUnsafePointer(to: value) { p in
                    for component in components { try component.encode(UnsafeRawPointer(p), &writer) }
                }
            },
            decode: { reader in try assemble { component, raw in try component.decode(&reader, raw) } })
    }
}

/// One component of a tuple: where it lies in the tuple's memory and how its type is stored.
private struct TupleComponent: Sendable {
    let offset: Int
    let size: Int
    let columnTypes: [ColumnType]
    let write: @Sendable (UnsafeRawPointer, inout BlockBuilder) throws -> Void
    let read: @Sendable (inout RowReader, UnsafeMutableRawPointer) throws -> Void
    let encode: @Sendable (UnsafeRawPointer, inout BinaryWriter) throws -> Void
    let decode: @Sendable (inout BinaryReader, UnsafeMutableRawPointer) throws -> Void
    let destroy: @Sendable (UnsafeMutableRawPointer) -> Void

    /// As ``make(_:after:)`` for a type known only at run time.
    static func make(opening type: Any.Type, after end: Int) -> TupleComponent? {
        func open<S>(_: S.Type) -> TupleComponent? { make(S.self, after: end) }
        return _openExistential(type, do: open)
    }

    /// The component of type `S` placed after `end` bytes of earlier components (Swift lays tuples out in
    /// order, each component at the next multiple of its alignment); nil when `S` has no codec
    /// (``ElementCodecs/single(_:)``).
    static func make<S>(_: S.Type, after end: Int) -> TupleComponent? {
        guard let codec = ElementCodecs.single(S.self) else { return nil }
        let alignment = MemoryLayout<S>.alignment
        let offset = (end + alignment - 1) / alignment * alignment
        // Safe (all closures): the pointers address a tuple whose component at `offset` has type S; tuple
        // memory is bound to each component's type at its offset.
        @Sendable func value(_ tuple: UnsafeRawPointer) -> UnsafePointer<S> {
            (tuple + offset).assumingMemoryBound(to: S.self)
        }
        @Sendable func slot(_ tuple: UnsafeMutableRawPointer) -> UnsafeMutablePointer<S> {
            (tuple + offset).assumingMemoryBound(to: S.self)
        }
        return TupleComponent(
            offset: offset, size: MemoryLayout<S>.size, columnTypes: codec.columnTypes,
            write: { tuple, builder in try codec.write(value(tuple).pointee, to: &builder) },
            read: { row, tuple in slot(tuple).initialize(to: try codec.read(from: &row)) },
            encode: { tuple, writer in try codec.encode(value(tuple).pointee, to: &writer) },
            decode: { reader, tuple in slot(tuple).initialize(to: try codec.decode(from: &reader)) },
            destroy: { tuple in slot(tuple).deinitialize(count: 1) })
    }
}
