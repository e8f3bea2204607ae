//! The 68 pickle opcodes of protocols 0–5 (CPython `Lib/pickletools.py`), with the encoding of
//! each opcode's inline argument.

/// How an opcode's argument is encoded in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arg {
    /// No inline argument.
    None,
    /// One unsigned byte.
    U1,
    /// Two bytes, little-endian unsigned.
    U2,
    /// Four bytes, little-endian signed.
    I4,
    /// Four bytes, little-endian unsigned.
    U4,
    /// Eight bytes, little-endian unsigned.
    U8,
    /// Eight bytes, big-endian IEEE double.
    F8,
    /// A `\n`-terminated line.
    Line,
    /// Two `\n`-terminated lines (module and name).
    TwoLines,
    /// A length (of the given width) then that many bytes.
    Counted(Len),
    /// A one-byte length then a little-endian two's-complement integer (LONG1).
    Long1,
    /// A four-byte signed length then a little-endian two's-complement integer (LONG4).
    Long4,
}

/// Width of a length prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Len {
    U1,
    I4,
    U4,
    U8,
}

macro_rules! opcodes {
    ($($name:ident = $byte:expr, $arg:expr, $proto:expr;)*) => {
        /// A pickle opcode.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        pub(crate) enum Op { $($name),* }

        impl Op {
            /// The opcode for a byte, if it is one (a table lookup: this runs once per opcode).
            #[inline]
            pub(crate) fn from_byte(b: u8) -> Option<Op> {
                const TABLE: [Option<Op>; 256] = {
                    let mut t = [None; 256];
                    $(t[$byte as usize] = Some(Op::$name);)*
                    t
                };
                TABLE[b as usize]
            }
            /// The opcode `pickletools` names so.
            pub(crate) fn from_name(name: &str) -> Option<Op> {
                match name { $(stringify!($name) => Some(Op::$name),)* _ => None }
            }
            /// The name `pickletools` uses.
            pub(crate) fn name(self) -> &'static str {
                match self { $(Op::$name => stringify!($name)),* }
            }
            /// The argument encoding.
            pub(crate) fn arg(self) -> Arg {
                match self { $(Op::$name => $arg),* }
            }
            /// The protocol that introduced the opcode.
            #[allow(dead_code)]
            pub(crate) fn proto(self) -> u8 {
                match self { $(Op::$name => $proto),* }
            }
        }

        /// Number of opcodes in the table.
        #[cfg(test)]
        pub(crate) const COUNT: usize = [$(stringify!($name)),*].len();
    };
}

opcodes! {
    // Protocol 0.
    INT = b'I', Arg::Line, 0;
    LONG = b'L', Arg::Line, 0;
    STRING = b'S', Arg::Line, 0;
    NONE = b'N', Arg::None, 0;
    UNICODE = b'V', Arg::Line, 0;
    FLOAT = b'F', Arg::Line, 0;
    APPEND = b'a', Arg::None, 0;
    LIST = b'l', Arg::None, 0;
    TUPLE = b't', Arg::None, 0;
    DICT = b'd', Arg::None, 0;
    SETITEM = b's', Arg::None, 0;
    POP = b'0', Arg::None, 0;
    DUP = b'2', Arg::None, 0;
    MARK = b'(', Arg::None, 0;
    GET = b'g', Arg::Line, 0;
    PUT = b'p', Arg::Line, 0;
    GLOBAL = b'c', Arg::TwoLines, 0;
    REDUCE = b'R', Arg::None, 0;
    BUILD = b'b', Arg::None, 0;
    INST = b'i', Arg::TwoLines, 0;
    STOP = b'.', Arg::None, 0;
    PERSID = b'P', Arg::Line, 0;
    // Protocol 1.
    BININT = b'J', Arg::I4, 1;
    BININT1 = b'K', Arg::U1, 1;
    BININT2 = b'M', Arg::U2, 1;
    BINSTRING = b'T', Arg::Counted(Len::I4), 1;
    SHORT_BINSTRING = b'U', Arg::Counted(Len::U1), 1;
    BINUNICODE = b'X', Arg::Counted(Len::U4), 1;
    BINFLOAT = b'G', Arg::F8, 1;
    EMPTY_LIST = b']', Arg::None, 1;
    APPENDS = b'e', Arg::None, 1;
    EMPTY_TUPLE = b')', Arg::None, 1;
    EMPTY_DICT = b'}', Arg::None, 1;
    SETITEMS = b'u', Arg::None, 1;
    POP_MARK = b'1', Arg::None, 1;
    BINGET = b'h', Arg::U1, 1;
    LONG_BINGET = b'j', Arg::U4, 1;
    BINPUT = b'q', Arg::U1, 1;
    LONG_BINPUT = b'r', Arg::U4, 1;
    OBJ = b'o', Arg::None, 1;
    BINPERSID = b'Q', Arg::None, 1;
    // Protocol 2.
    PROTO = 0x80, Arg::U1, 2;
    NEWOBJ = 0x81, Arg::None, 2;
    EXT1 = 0x82, Arg::U1, 2;
    EXT2 = 0x83, Arg::U2, 2;
    EXT4 = 0x84, Arg::I4, 2;
    TUPLE1 = 0x85, Arg::None, 2;
    TUPLE2 = 0x86, Arg::None, 2;
    TUPLE3 = 0x87, Arg::None, 2;
    NEWTRUE = 0x88, Arg::None, 2;
    NEWFALSE = 0x89, Arg::None, 2;
    LONG1 = 0x8a, Arg::Long1, 2;
    LONG4 = 0x8b, Arg::Long4, 2;
    // Protocol 3.
    BINBYTES = b'B', Arg::Counted(Len::U4), 3;
    SHORT_BINBYTES = b'C', Arg::Counted(Len::U1), 3;
    // Protocol 4.
    SHORT_BINUNICODE = 0x8c, Arg::Counted(Len::U1), 4;
    BINUNICODE8 = 0x8d, Arg::Counted(Len::U8), 4;
    BINBYTES8 = 0x8e, Arg::Counted(Len::U8), 4;
    EMPTY_SET = 0x8f, Arg::None, 4;
    ADDITEMS = 0x90, Arg::None, 4;
    FROZENSET = 0x91, Arg::None, 4;
    NEWOBJ_EX = 0x92, Arg::None, 4;
    STACK_GLOBAL = 0x93, Arg::None, 4;
    MEMOIZE = 0x94, Arg::None, 4;
    FRAME = 0x95, Arg::U8, 4;
    // Protocol 5.
    BYTEARRAY8 = 0x96, Arg::Counted(Len::U8), 5;
    NEXT_BUFFER = 0x97, Arg::None, 5;
    READONLY_BUFFER = 0x98, Arg::None, 5;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_every_opcode_once() {
        assert_eq!(COUNT, 68);
        let known = (0..=255u8).filter_map(Op::from_byte).count();
        assert_eq!(known, 68);
        for b in 0..=255u8 {
            if let Some(op) = Op::from_byte(b) {
                assert!(op.proto() <= 5, "{}", op.name());
            }
        }
    }
}
