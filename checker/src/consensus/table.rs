//! Interned commands and keys, so the c-struct model works on small
//! integers rather than strings.

use crate::fxhash::FxHashMap;
use crate::history::{CmdId, Command};

/// A command's index in a [`CommandTable`].
pub type CmdIx = u32;
/// A key's index in a [`CommandTable`].
pub type KeyIx = u32;

/// Which keys a command touches (its footprint in the interference relation
/// of Section 4.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Touch {
    /// A checkpoint: every key, including ones no command has named.
    All,
    /// These distinct keys, sorted; empty for a `balances` of no account.
    Keys(Box<[KeyIx]>),
}

/// Every command seen in a history, by id. A command's footprint is taken
/// from the first record that names its id; a later record with the same id
/// and a different operation is a Nontriviality matter, judged elsewhere.
#[derive(Debug, Default)]
pub struct CommandTable {
    by_id: FxHashMap<CmdId, CmdIx>,
    commands: Vec<Command>,
    touches: Vec<Touch>,
    keys: FxHashMap<String, KeyIx>,
    key_names: Vec<String>,
}

impl CommandTable {
    pub fn new() -> Self {
        CommandTable::default()
    }

    pub fn intern(&mut self, command: &Command) -> CmdIx {
        if let Some(&ix) = self.by_id.get(&command.id) {
            return ix;
        }
        let ix = CmdIx::try_from(self.commands.len()).expect("fewer than 2^32 commands");
        let touch = match command.op.keys() {
            None => Touch::All,
            Some(keys) => {
                let mut ixs: Vec<KeyIx> = keys.into_iter().map(|k| self.intern_key(k)).collect();
                ixs.sort_unstable();
                Touch::Keys(ixs.into_boxed_slice())
            }
        };
        self.by_id.insert(command.id.clone(), ix);
        self.commands.push(command.clone());
        self.touches.push(touch);
        ix
    }

    fn intern_key(&mut self, key: &str) -> KeyIx {
        if let Some(&ix) = self.keys.get(key) {
            return ix;
        }
        let ix = KeyIx::try_from(self.key_names.len()).expect("fewer than 2^32 keys");
        self.keys.insert(key.to_owned(), ix);
        self.key_names.push(key.to_owned());
        ix
    }

    pub fn lookup(&self, id: &CmdId) -> Option<CmdIx> {
        self.by_id.get(id).copied()
    }

    pub fn command(&self, ix: CmdIx) -> &Command {
        &self.commands[ix as usize]
    }

    pub fn id(&self, ix: CmdIx) -> &CmdId {
        &self.commands[ix as usize].id
    }

    pub fn touch(&self, ix: CmdIx) -> &Touch {
        &self.touches[ix as usize]
    }

    pub fn key_name(&self, key: KeyIx) -> &str {
        &self.key_names[key as usize]
    }

    pub fn len(&self) -> usize {
        self.commands.len()
    }

    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }
}
