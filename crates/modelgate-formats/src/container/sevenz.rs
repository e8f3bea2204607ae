//! 7-Zip archives.

use crate::inventory::{Node, Note, NoteKind};
use crate::scan::{Ctx, Rest};
use crate::stream::Stream;

pub(crate) fn scan(_s: &mut Stream<'_>, _ctx: &mut Ctx<'_>, node: &mut Node) -> Rest {
    node.note(Note::new(
        NoteKind::ArchiveOpaque,
        "7z archive: torch cannot load it and this version cannot look inside it",
    ));
    Rest::Drain
}
