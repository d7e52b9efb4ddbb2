//! §5. Debian's nginx in front of three instances against one instance direct, and a SIGKILL under
//! load.

use std::{fmt::Write as _, process::Command, time::Duration};

use anyhow::bail;
use benchmarks::nginx;
use benchmarks::procs::{Proc, free_addrs};
use benchmarks::report::{ms, rps, table};
use benchmarks::wrk::{self, WrkResult};

use crate::Results;
use crate::ctx::{Ctx, LOAD_CONNECTIONS};
use crate::markdown::{ratio, section};

pub struct NginxFigure {
    pub compared: Vec<(&'static str, WrkResult, WrkResult)>,
    pub failover: WrkResult,
    pub killed: String,
    pub kill_after: Duration,
    pub run: Duration,
}

pub fn measure(ctx: &mut Ctx, results: &mut Results) -> anyhow::Result<()> {
    let mut instances = Vec::new();
    for n in 1..=3 {
        instances.push(ctx.ours(&format!("mcp-{n}"), &ctx.tokens_file.clone(), &ctx.demo_kb.clone())?);
    }
    let ports: Vec<u16> = instances.iter().map(|i| i.addr.port()).collect();
    let addr = free_addrs(1)?[0];
    let dir = ctx.work().join("nginx");
    std::fs::create_dir_all(&dir)?;
    let shipped = std::fs::read_to_string(ctx.root.join("nginx/nginx.conf"))?;
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, nginx::derive_config(&shipped, addr.port(), &ports, &dir)?)?;
    let nginx_command = || {
        let mut command = Command::new("nginx");
        command
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("nginx-error.log"));
        command
    };
    let check = nginx_command().arg("-t").output()?;
    if !check.status.success() {
        bail!(
            "nginx -t rejects the derived config: {}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
    let mut command = nginx_command();
    command.args(["-g", "daemon off;"]);
    let proxy = Proc::start_terminable("nginx", command, addr, ctx.work())?;

    let mut compared = Vec::new();
    for (name, script) in [("tools/call", "tools_call.lua"), ("ping", "ping.lua")] {
        let direct = ctx.wrk(
            &format!("{name} direct (mcp-1)"),
            &ctx.load(script, instances[0].addr, "/mcp", LOAD_CONNECTIONS),
        )?;
        let proxied = ctx.wrk(
            &format!("{name} via nginx (3 instances)"),
            &ctx.load(script, proxy.addr, "/mcp", LOAD_CONNECTIONS),
        )?;
        ctx.rows.wrk(
            "5. nginx",
            &format!("{name} direct, one instance"),
            LOAD_CONNECTIONS,
            &direct,
        );
        ctx.rows.wrk(
            "5. nginx",
            &format!("{name} via nginx, three instances"),
            LOAD_CONNECTIONS,
            &proxied,
        );
        compared.push((name, direct, proxied));
    }
    for instance in &instances {
        ctx.process(results, instance, "ours behind nginx; after the nginx loads");
    }

    // SIGKILL one instance under load.
    let mut load = ctx.load("tools_call.lua", proxy.addr, "/mcp", LOAD_CONNECTIONS);
    load.duration = ctx.plan.failover_run;
    let child = load.spawn()?;
    std::thread::sleep(ctx.plan.kill_after);
    let killed = instances[1].name.clone();
    instances[1].kill();
    let failover = wrk::finish(child)?;
    ctx.log_wrk(&format!("tools/call via nginx, SIGKILL {killed}"), &load, &failover);
    ctx.rows.wrk(
        "5. nginx",
        "tools/call via nginx, one instance SIGKILLed",
        LOAD_CONNECTIONS,
        &failover,
    );
    ctx.rows.push(
        "5. nginx",
        "tools/call via nginx, one instance SIGKILLed",
        Some(LOAD_CONNECTIONS),
        "failed_requests",
        (failover.non_2xx + failover.socket_errors) as f64,
        "count",
    );
    results.nginx = Some(NginxFigure {
        compared,
        failover,
        killed,
        kill_after: ctx.plan.kill_after,
        run: ctx.plan.failover_run,
    });
    drop(proxy);
    Ok(())
}

/// The section's table and the failover figure.
pub fn render(md: &mut String, _ctx: &Ctx, results: &Results) {
    let figures = results.nginx.as_ref();
    section(
        md,
        results,
        "5. Through nginx, three instances",
        "5. nginx",
        figures,
        |md, n| {
            let _ = writeln!(
                md,
                "Debian's nginx with a config derived from `nginx/nginx.conf` (plain HTTP on loopback, no \
             `limit_req`; upstream, keepalive, failover and logging as shipped) in front of three of \
             ours, against one of them directly, {LOAD_CONNECTIONS} connections. On this 2-core machine nginx, \
             three instances and wrk share the same cores, so the proxy's cost shows; on real hosts \
             the instances add capacity.\n"
            );
            let rows: Vec<Vec<String>> = n
                .compared
                .iter()
                .map(|(name, direct, proxied)| {
                    vec![
                        name.to_string(),
                        rps(direct.rps),
                        format!("{} / {}", ms(direct.p50_ms), ms(direct.p99_ms)),
                        rps(proxied.rps),
                        format!("{} / {}", ms(proxied.p50_ms), ms(proxied.p99_ms)),
                        ratio(proxied.rps, direct.rps),
                    ]
                })
                .collect();
            md.push_str(&table(
                &[
                    "request",
                    "direct req/s",
                    "direct p50 / p99",
                    "via nginx req/s",
                    "via nginx p50 / p99",
                    "nginx/direct",
                ],
                &rows,
            ));
            let f = &n.failover;
            let _ = writeln!(
                md,
                "\nFailover: `tools/call` through nginx for {} s at {LOAD_CONNECTIONS} connections, {} SIGKILLed at \
             {} s: **{} failed of {} requests** ({} non-2xx, {} socket errors), {} req/s overall. \
             A POST already sent to the killed instance is not replayed elsewhere (nginx.conf: \
             no `non_idempotent`), so the failures are the requests in flight on it; new \
             connections to it are refused and retried on the others.",
                n.run.as_secs(),
                n.killed,
                n.kill_after.as_secs(),
                f.non_2xx + f.socket_errors,
                f.requests,
                f.non_2xx,
                f.socket_errors,
                rps(f.rps)
            );
        },
    );
}
