//! Issue #13 §B.9: one `search_knowledgebase` call costs a bounded amount, a call whose request is
//! gone stops costing anything, and maximum-cost calls cannot make an ordinary search wait.

mod common;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use common::*;
use postgres_mcp::{
    kb::{
        store::{KbLoader, search_concurrency},
        terms::{MAX_QUERY_BYTES, MAX_TERMS},
    },
    watch::Loader,
};
use serde_json::Value;

/// `tools/call search_knowledgebase`: HTTP status, and the JSON-RPC body.
async fn search(server: &postgres_mcp::server::RunningServer, token: &str, query: &str) -> (u16, Value) {
    let response = rpc(server, Some(token), search_call(1, query)).await;
    (response.status().as_u16(), response.json().await.unwrap())
}

/// `n` distinct words of the generated vocabulary (letters only, so no stemmer folds two together).
fn vocabulary(n: usize) -> Vec<String> {
    (0..n)
        .map(|mut i| {
            let mut word = String::from("zq");
            loop {
                word.push((b'a' + (i % 26) as u8) as char);
                i /= 26;
                if i == 0 {
                    break word;
                }
            }
        })
        .collect()
}

#[tokio::test]
async fn each_kind_of_oversized_query_is_a_tool_error_naming_the_limit() {
    let fixture = Fixture::new();
    let server = fixture.start("mcp-kb").await;
    let distinct = |n: usize| vocabulary(n).join(" ");
    let too_long = format!("is {} bytes; the limit is {MAX_QUERY_BYTES} bytes", MAX_QUERY_BYTES + 1);
    // (case, query, Ok(a source it finds) or Err(the message))
    let cases: Vec<(&str, String, Result<&str, String>)> = vec![
        (
            "900 KB of one word (just under http.max_body)",
            "vacuum ".repeat(130_000),
            Err("is 910000 bytes; the limit is 4096 bytes".into()),
        ),
        (
            "300 KB of distinct words",
            distinct(40_000),
            Err("bytes; the limit is 4096 bytes".into()),
        ),
        (
            "one byte past the byte limit",
            "x".repeat(MAX_QUERY_BYTES + 1),
            Err(too_long),
        ),
        (
            "one word past the term limit",
            distinct(MAX_TERMS + 1),
            Err(format!(
                "has {} distinct words; the limit is {MAX_TERMS}",
                MAX_TERMS + 1
            )),
        ),
        (
            "no word at all",
            "?! ...".into(),
            Err("query must contain at least one word".into()),
        ),
        (
            "at the term limit",
            format!("vacuum {}", distinct(MAX_TERMS - 1)),
            Ok("vacuum.md"),
        ),
        (
            "one word repeated up to the byte limit",
            "vacuum ".repeat(MAX_QUERY_BYTES / 7),
            Ok("vacuum.md"),
        ),
    ];
    for (case, query, expected) in cases {
        let (status, body) = search(&server, &fixture.token, &query).await;
        assert_eq!(status, 200, "{case}");
        assert!(
            body.get("error").is_none(),
            "{case}: a tool error, not a JSON-RPC error: {body}"
        );
        let result = &body["result"];
        match expected {
            Ok(source) => {
                assert_eq!(result["isError"], false, "{case}: {result}");
                assert_eq!(result["structuredContent"]["results"][0]["source"], source, "{case}");
            }
            Err(message) => {
                assert_eq!(result["isError"], true, "{case}: {result}");
                let text = result["content"][0]["text"].as_str().unwrap();
                assert!(text.contains(&message), "{case}: {text:?} should say {message:?}");
            }
        }
    }
    server.stop().await.unwrap();
}

/// A statement that runs for minutes unless SQLite is told to stop.
const ENDLESS: &str = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n";

#[tokio::test]
async fn a_search_whose_request_is_gone_frees_its_slot_and_leaves_no_cpu_behind() {
    let fixture = Fixture::new();
    let loader = KbLoader {
        copy_to_local: false,
        copy_dir: fixture.path("copies"),
    };
    let kb = Arc::new(loader.load(&fixture.path("kb.db")).unwrap().value);
    // Every slot taken by work that never ends by itself, each dropped by its request timeout.
    let runaway: Vec<_> = (0..search_concurrency())
        .map(|_| {
            let work = kb
                .clone()
                .run(|db| db.query_row(ENDLESS, [], |row| row.get::<_, i64>(0)));
            tokio::spawn(tokio::time::timeout(Duration::from_millis(300), work))
        })
        .collect();
    for task in runaway {
        assert!(
            task.await.unwrap().is_err(),
            "the endless statement was expected to time out"
        );
    }
    // The slots are free at once: an ordinary search gets one and answers.
    let answered = tokio::time::timeout(Duration::from_secs(5), kb.clone().search_async("vacuum".into(), 3))
        .await
        .expect("an ordinary search waited more than 5 s for a slot: the dropped searches still hold them");
    assert_eq!(answered.unwrap()[0].source, "vacuum.md");
    // Nothing keeps computing: the process is idle now (before #13: a core per dropped search).
    let cpu_before = process::cpu_time(std::process::id());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = process::cpu_time(std::process::id()) - cpu_before;
    println!(
        "CPU used in the 2 s after {} dropped searches: {used:?}",
        search_concurrency()
    );
    assert!(
        used < Duration::from_millis(500),
        "{used:?} of CPU in 2 s after the searches were dropped"
    );
    // The connections of the interrupted statements serve the next calls.
    let next = kb
        .clone()
        .run(|db| db.query_row("SELECT 1", [], |row| row.get::<_, i64>(0)));
    assert_eq!(next.await.unwrap(), 1);
}

#[tokio::test]
async fn an_ordinary_search_answers_while_maximum_cost_searches_run() {
    const BOUND: Duration = Duration::from_secs(3);
    // A knowledge base where every word matches many chunks: 3000 documents of 150 words drawn from
    // 6000, so a query of many words costs what it costs on a large real one.
    let fixture = Fixture::new();
    let docs = fixture.path("generated");
    std::fs::create_dir_all(&docs).unwrap();
    let words = vocabulary(6000);
    let mut seed = 7u64;
    for doc in 0..3000 {
        let text: Vec<&str> = (0..150)
            .map(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                words[(seed >> 33) as usize % words.len()].as_str()
            })
            .collect();
        std::fs::write(
            docs.join(format!("doc-{doc}.md")),
            format!("# Doc {doc}\n\n{}\n", text.join(" ")),
        )
        .unwrap();
    }
    let kb = fixture.path("generated.db");
    postgres_mcp::kb::build::build(&docs, &kb).unwrap();
    let server = fixture
        .start_with("mcp-kb", &format!("kb:\n  path: {}\n", kb.display()))
        .await;

    // The most expensive queries a client can send: every word of the vocabulary, and the largest
    // query accepted. As many clients as there are search slots, for three seconds.
    let everything = words.join(" ");
    let largest_accepted = words[..MAX_TERMS].join(" ");
    let until = Instant::now() + Duration::from_secs(3);
    let hostile: Vec<_> = (0..search_concurrency())
        .map(|i| {
            let (server, token) = (&server, &fixture.token);
            let query = if i % 2 == 0 { &everything } else { &largest_accepted };
            async move {
                while Instant::now() < until {
                    let (status, _) = search(server, token, query).await;
                    assert_eq!(status, 200);
                }
            }
        })
        .collect();
    let ordinary = async {
        let mut latencies = Vec::new();
        tokio::time::sleep(Duration::from_millis(200)).await;
        while Instant::now() < until {
            let started = Instant::now();
            let (status, body) = search(&server, &fixture.token, &words[100..103].join(" ")).await;
            latencies.push(started.elapsed());
            assert_eq!(
                (status, &body["result"]["isError"]),
                (200, &Value::Bool(false)),
                "{body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        latencies
    };
    let (_, mut latencies) = tokio::join!(futures_util::future::join_all(hostile), ordinary);
    latencies.sort();
    let worst = *latencies.last().unwrap();
    println!(
        "ordinary search during {} maximum-cost clients: {} searches, p50 {:?}, max {worst:?}",
        search_concurrency(),
        latencies.len(),
        latencies[latencies.len() / 2]
    );
    assert!(worst < BOUND, "an ordinary search waited {worst:?} (bound {BOUND:?})");
    server.stop().await.unwrap();
}
