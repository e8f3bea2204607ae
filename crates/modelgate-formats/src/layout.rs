//! Archive layouts: what a loader expects to find in an archive, and what it does with each
//! member.
//!
//! A container parser (zip) knows its on-disk structure and nothing about torch, Keras, skops or
//! NumPy. It asks the driver for the registered layouts (`Driver::archive_layouts`, listed in
//! crate::registry), lets the first that recognises the member names decide the archive's
//! format, and opens every layout that applies to the archive as a [`LayoutReader`]: each gives
//! member roles, scans the members it claims, adds its notes about members at fixed points of
//! the container's walk, and checks the whole archive at the end. The layouts live with their
//! formats (torch.rs, keras.rs, skops.rs, numpy.rs).

use crate::driver::Driver;
use crate::inventory::{Format, Node, Role};
use crate::stream::Stream;
use std::collections::HashMap;

/// A loader's archive layout, registered once.
pub(crate) trait ArchiveLayout: Sync {
    /// A name for the registry's pinned order.
    fn name(&self) -> &'static str;
    /// The archive's format, when the member names (in directory order) are this layout's.
    fn classify(&self, _names: &[&str]) -> Option<Format> {
        None
    }
    /// A reader for an archive of `format` with these member names, when the layout applies.
    fn open(&self, format: Format, names: &[&str]) -> Option<Box<dyn LayoutReader>>;
}

/// One layout applied to one archive. Every hook but [`LayoutReader::role`] has a default that
/// does nothing.
pub(crate) trait LayoutReader {
    /// What the loader does with this member, if this layout says.
    fn role(&self, name: &str) -> Option<Role>;

    /// True when this layout scans members of `role` itself ([`LayoutReader::scan_member`]).
    fn claims(&self, _role: Option<Role>) -> bool {
        false
    }

    /// Scans a member this layout claims, as the loader reads it.
    fn scan_member(
        &mut self,
        stream: Stream<'_>,
        ctx: &mut dyn Driver,
        child: Node,
        _role: Option<Role>,
    ) -> Node {
        crate::driver::scan_node(stream, ctx, child, crate::driver::How::Sniff)
    }

    /// Before a member is read: `role` is what the first layout giving one said (or none).
    fn member_start(&self, _archive: &mut Node, _name: &str, _role: Option<Role>, _at: u64) {}

    /// After a member's content was scanned; `method` is the zip compression method (0 for
    /// stored data and for containers without compression).
    fn member_read(&self, _archive: &mut Node, _name: &str, _method: u16, _at: u64) {}

    /// After a member and the container's checks of it.
    fn member_done(&self, _archive: &mut Node, _name: &str, _role: Option<Role>) {}

    /// After every member: `members` maps each lower-cased member name to its declared size.
    fn finish(&mut self, _archive: &mut Node, _members: &HashMap<String, u64>) {}
}
