extension String {
    /// The words of the string between occurrences of the ASCII character `separator`, without empty ones, as
    /// ``Word`` values cut straight out of its UTF-8 bytes (no `String` and no array per word; see ``Word``):
    /// the fast way to tokenize lines, `lines.flatMap { $0.split(ascii: " ") }`, whose words then count with
    /// `map { ($0, 1) }.reduceByKey(+)` on the engine's word path. A word's ``Word/string`` is its `String`.
    ///
    /// A separator outside ASCII splits as `split(separator:)` does (the words are made from its pieces).
    ///
    /// The words keep the string: called on a string it owns (as the word path's `flatMap` hands its lines), the
    /// string goes into them without a copy.
    @inlinable
    public consuming func split(ascii separator: Unicode.Scalar) -> ASCIIWords {
        ASCIIWords(line: self, separator: separator)
    }
}
