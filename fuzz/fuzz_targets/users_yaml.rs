//! users.yaml as the server and the CLI read it: no input may panic, and the validated set never
//! accepts a file the CLI's entry list refuses, nor holds more users than the list has entries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postgres_mcp::auth::users::{UserEntry, UserSet};

fuzz_target!(|text: &str| {
    let set = UserSet::parse(text);
    let entries = UserEntry::parse_file(text);
    match (&set, &entries) {
        (Ok(set), Ok(entries)) => assert_eq!(set.len(), entries.len()),
        (Ok(_), Err(error)) => panic!("the set loaded a file the entry list refuses: {error}"),
        _ => {}
    }
});
