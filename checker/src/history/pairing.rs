//! Which command each client event belongs to: commands are numbered by
//! their ids in order of first appearance, so a command's invocation and
//! its completion get one number wherever they are in the file.
//!
//! Looking every id up in a table of a million is the dearest part of
//! reading a long history (each lookup a cache and TLB miss), and in the
//! histories clients write it is not needed: each process completes its
//! last invocation, and ids are not reused. So numbering is optimistic
//! first: invocations take the next number and completions their process's
//! last one, and at the end the ids are checked to be distinct. A history
//! where either fails is read again with every id looked up (`exact`).

use crate::fxhash::FxHashMap;
use crate::history::EventKind;
use crate::intern::{Interner, Strings};

/// How commands are numbered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Numbering {
    /// Optimistically (above); the read says if it went wrong.
    Optimistic,
    /// Every id looked up.
    Exact,
    /// Not at all: every command is 0 (for readers that keep whole events).
    Off,
}

enum Ids {
    Off,
    /// Every id looked up.
    Exact(Interner),
    /// Ids listed in order; `broken` once an event did not fit.
    Optimistic {
        ids: Strings,
        broken: bool,
    },
}

pub struct Pairing {
    ids: Ids,
    /// Each process's last invocation: its completion usually comes next,
    /// and is found here without a lookup in the big id table.
    last_invoked: FxHashMap<u64, u32>,
}

impl Pairing {
    pub fn new(numbering: Numbering) -> Self {
        let ids = match numbering {
            Numbering::Off => Ids::Off,
            Numbering::Exact => Ids::Exact(Interner::default()),
            Numbering::Optimistic => Ids::Optimistic {
                ids: Strings::default(),
                broken: false,
            },
        };
        Pairing {
            ids,
            last_invoked: FxHashMap::default(),
        }
    }

    /// Makes room for `commands` commands with ids of `bytes` bytes in all.
    pub fn reserve(&mut self, commands: usize, bytes: usize) {
        match &mut self.ids {
            Ids::Off => {}
            Ids::Exact(ids) => ids.reserve(commands, bytes),
            Ids::Optimistic { ids, .. } => ids.reserve(commands, bytes),
        }
    }

    fn text(&self, n: u32) -> &str {
        match &self.ids {
            Ids::Off => "",
            Ids::Exact(ids) => ids.text(n),
            Ids::Optimistic { ids, .. } => ids.text(n),
        }
    }

    /// The number of the command with this id.
    pub fn command(&mut self, kind: EventKind, id: &str, process: u64) -> u32 {
        if matches!(self.ids, Ids::Off) {
            return 0;
        }
        if kind != EventKind::Invoke {
            if let Some(&n) = self.last_invoked.get(&process) {
                if self.text(n) == id {
                    return n;
                }
            }
        }
        let n = match &mut self.ids {
            Ids::Off => 0,
            Ids::Exact(ids) => ids.intern(id).0,
            Ids::Optimistic { broken: true, .. } => return 0,
            Ids::Optimistic { broken, .. } if kind != EventKind::Invoke => {
                *broken = true;
                return 0;
            }
            Ids::Optimistic { ids, .. } => ids.push(id),
        };
        if kind == EventKind::Invoke {
            self.last_invoked.insert(process, n);
        }
        n
    }

    /// Whether an optimistic numbering has gone wrong already.
    pub fn is_broken(&self) -> bool {
        matches!(self.ids, Ids::Optimistic { broken: true, .. })
    }

    /// The ids, by command number; `None` when the optimistic numbering
    /// was wrong, and the history must be read again with `exact`.
    pub fn into_ids(self) -> Option<Strings> {
        match self.ids {
            Ids::Off => Some(Strings::default()),
            Ids::Exact(ids) => Some(ids.into_strings()),
            Ids::Optimistic { broken: true, .. } => None,
            Ids::Optimistic { ids, .. } => ids.all_distinct().then_some(ids),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_commands_by_first_appearance() {
        let mut p = Pairing::new(Numbering::Exact);
        assert_eq!(p.command(EventKind::Ok, "a", 1), 0);
        assert_eq!(p.command(EventKind::Invoke, "b", 1), 1);
        assert_eq!(p.command(EventKind::Invoke, "a", 2), 0);
        assert_eq!(p.command(EventKind::Info, "b", 2), 1);
        assert_eq!(p.command(EventKind::Fail, "a", 2), 0);
        assert_eq!(p.command(EventKind::Invoke, "c", 1), 2);
        assert_eq!(p.command(EventKind::Ok, "c", 1), 2);
        assert_eq!(p.into_ids().unwrap().text(2), "c");
    }

    #[test]
    fn optimism_holds_only_where_it_is_right() {
        let mut p = Pairing::new(Numbering::Optimistic);
        assert_eq!(p.command(EventKind::Invoke, "a", 1), 0);
        assert_eq!(p.command(EventKind::Invoke, "b", 2), 1);
        assert_eq!(p.command(EventKind::Ok, "a", 1), 0);
        assert_eq!(p.command(EventKind::Info, "b", 2), 1);
        assert_eq!(p.command(EventKind::Fail, "b", 2), 1);
        assert!(!p.is_broken());
        assert_eq!(p.into_ids().unwrap().text(1), "b");

        let mut p = Pairing::new(Numbering::Optimistic);
        p.command(EventKind::Invoke, "a", 1);
        p.command(EventKind::Ok, "a", 2);
        assert!(p.is_broken());
        assert!(p.into_ids().is_none());

        let mut p = Pairing::new(Numbering::Optimistic);
        p.command(EventKind::Invoke, "a", 1);
        p.command(EventKind::Invoke, "b", 2);
        p.command(EventKind::Invoke, "a", 3);
        assert!(!p.is_broken());
        assert!(p.into_ids().is_none(), "a is invoked twice");
    }
}
