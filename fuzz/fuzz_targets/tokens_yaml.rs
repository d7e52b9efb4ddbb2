//! tokens.yaml as the server and the CLI read it: no input may panic, the fast line reader must
//! read exactly what the YAML parser reads or leave the file to it, and the two ways of loading
//! (the validated set and the CLI's entry list) must agree on whether the file can be read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postgres_mcp::{
    auth::tokens::{TokenEntry, TokenSet},
    fuzzing::tokens_readers_agree,
};

fuzz_target!(|text: &str| {
    if let Err(disagreement) = tokens_readers_agree(text) {
        panic!("tokens.yaml readers disagree: {disagreement}");
    }
    let set = TokenSet::parse(text);
    let entries = TokenEntry::parse_file(text);
    // The set validates more (hashes, duplicates, scopes), so it may refuse what the list reads,
    // never the reverse; and what it accepts has as many tokens as the list has entries.
    match (&set, &entries) {
        (Ok(set), Ok(entries)) => assert_eq!(set.len(), entries.len()),
        (Ok(_), Err(error)) => panic!("the set loaded a file the entry list refuses: {error}"),
        _ => {}
    }
});
