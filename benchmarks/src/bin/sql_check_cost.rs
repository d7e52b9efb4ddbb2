//! CPU per `query_database` statement check (issue #13 §C.12): PostgreSQL's parser (libpg_query)
//! plus the walk for refused calls, by statement size, on one thread. The check's source files are
//! compiled in from the server (as `pg.rs` does with the test cluster), so this measures exactly
//! the code that runs.

#[path = "../../../server/src/postgres/check_threads.rs"]
#[allow(dead_code)]
mod check_threads;
#[path = "../../../server/src/postgres/checked_texts.rs"]
#[allow(dead_code)]
mod checked_texts;
#[path = "../../../server/src/postgres/sql_check.rs"]
#[allow(dead_code)]
mod sql_check;
#[path = "../../../server/src/postgres/sql_policy.rs"]
#[allow(dead_code)]
mod sql_policy;

use std::time::{Duration, Instant};

/// Runs `check` on `sql` for about `budget`; the mean time per check.
fn per_check(sql: &str, budget: Duration) -> Duration {
    let started = Instant::now();
    let mut runs = 0u32;
    while started.elapsed() < budget {
        let _ = std::hint::black_box(sql_check::check(std::hint::black_box(sql)));
        runs += 1;
    }
    started.elapsed() / runs
}

fn main() {
    let in_list = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    let cases = [
        (
            "benchmark PK lookup",
            "SELECT id, name, balance FROM customers WHERE id = 4242".to_string(),
        ),
        (
            "#13 C.12 example (refused)",
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE usename = current_user AND pid <> pg_backend_pid()"
                .to_string(),
        ),
        (
            "CTE + joins + LATERAL",
            "WITH recent AS (SELECT customer_id, sum(total) AS t FROM orders WHERE created > now() - \
             interval '30 days' GROUP BY 1) SELECT c.id, c.name, r.t, (SELECT count(*) FROM orders o \
             WHERE o.customer_id = c.id) AS n, CASE WHEN r.t > 1000 THEN 'vip' ELSE 'std' END AS tier \
             FROM customers c JOIN recent r ON r.customer_id = c.id LEFT JOIN LATERAL (SELECT max(total) \
             m FROM orders o2 WHERE o2.customer_id = c.id) x ON true WHERE c.active ORDER BY r.t DESC LIMIT 50"
                .to_string(),
        ),
        (
            "IN list, 1k values",
            format!("SELECT * FROM t WHERE id IN ({})", in_list(1000)),
        ),
        (
            "IN list, 15k values",
            format!("SELECT * FROM t WHERE id IN ({})", in_list(15000)),
        ),
    ];
    println!("| statement | bytes | µs per check | outcome |\n|---|---|---|---|");
    for (name, sql) in &cases {
        let per = per_check(sql, Duration::from_secs(2));
        let outcome = match sql_check::check(sql) {
            Ok(()) => "allowed".to_string(),
            Err(refusal) => format!("refused: {}", refusal.to_string().split(':').next().unwrap_or_default()),
        };
        println!(
            "| {name} | {} | {:.1} | {outcome} |",
            sql.len(),
            per.as_secs_f64() * 1e6
        );
    }
}
