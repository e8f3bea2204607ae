//! tar archives.

use crate::inventory::{Node, Note, NoteKind};
use crate::scan::{Ctx, Rest};
use crate::stream::Stream;

pub(crate) fn scan(_s: &mut Stream<'_>, _ctx: &mut Ctx<'_>, node: &mut Node) -> Rest {
    node.note(Note::new(
        NoteKind::ArchiveOpaque,
        "tar archive: member listing is not implemented yet; the content was not inspected",
    ));
    Rest::Drain
}
