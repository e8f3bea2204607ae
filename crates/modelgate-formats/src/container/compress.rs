//! Compression wrappers (gzip, zlib, bzip2, xz, lzma): the decompressed content is scanned as a
//! child, under the expansion budget.

use crate::inventory::{Format, Node, Note, NoteKind};
use crate::scan::{Ctx, Rest};
use crate::stream::Stream;

pub(crate) fn scan(
    format: Format,
    _s: &mut Stream<'_>,
    _ctx: &mut Ctx<'_>,
    node: &mut Node,
) -> Rest {
    node.note(Note::new(
        NoteKind::ArchiveOpaque,
        format!(
            "{format} data: decompression is not implemented yet; the content was not inspected"
        ),
    ));
    Rest::Drain
}
