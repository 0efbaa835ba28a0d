//! The report as a table for people (`--json` prints [`Report`] as is).

use crate::report::{Report, Row};

/// Prints `report` to stdout.
pub(crate) fn print_table(report: &Report) {
    println!("Tessera bench — {} — {}", report.machine, report.store);
    println!(
        "{} s per scenario, {} connections, loopback, server and load in one process",
        report.duration_s, report.connections
    );
    println!();
    print_header();
    for row in &report.rows {
        let ratio = row
            .ratio_to_ceiling
            .map_or_else(|| "—".to_owned(), |r| format!("{:.0}%", r * 100.0));
        print_row(row, &ratio);
    }
    println!(
        "ratio: to GET /healthz in alternating windows (the code flow's: to the refresh rate; \
         first-sight tokens': to the baseline below it)"
    );
    println!();
    println!(
        "GET /v1/me (cookie) p99 at half its maximum rate: {} µs",
        report.me_p99_at_half_load_us
    );
    println!(
        "GET /v1/me (cookie) p99 idle: {} µs; while sign-ins saturate the hashing pool: {} µs ({:.1}×)",
        report.me_p99_idle_us,
        report.me_p99_during_sign_in_saturation_us,
        report.me_p99_during_sign_in_saturation_us as f64 / report.me_p99_idle_us.max(1) as f64
    );
    println!(
        "sign-in: {:.0}% of what Argon2id allows on this machine ({:.1}/s)",
        report.sign_in_to_argon2_capacity * 100.0,
        report.argon2_capacity_per_second
    );
    for case in &report.sign_in_overload {
        println!(
            "sign-in overload, {} clients retrying {}: {:.0}% of the Argon2id capacity ({:.1} of {:.1}/s), {:.0} × 503/s{}; GET /v1/me p99 {} µs ({:.1}× its {} µs idle)",
            case.clients,
            case.retry,
            case.goodput_to_argon2_capacity * 100.0,
            case.sign_ins_per_second,
            case.argon2_capacity_per_second,
            case.busy_per_second,
            if case.busy_without_retry_after > 0 {
                format!(" ({} without Retry-After)", case.busy_without_retry_after)
            } else {
                String::new()
            },
            case.me_p99_us,
            case.me_p99_to_idle,
            case.me_p99_idle_us,
        );
    }
    let first = &report.first_sight;
    println!(
        "first-sight tokens: {} minted ({:.0}/s), {} sent once; {:.0}% of requests carried one of \
         {} hot tokens: {:.1}% of them cache hits ({} of {}); verified-token cache held at most \
         {} (bound {}), {} after",
        first.tokens_minted,
        first.minted_per_second,
        first.first_sight_requests,
        first.hot_share * 100.0,
        first.hot_tokens,
        first.hot_hit_rate * 100.0,
        first.hot_hits,
        first.hot_requests,
        first.cache_most_held,
        first.cache_capacity,
        first.cache_held_after,
    );
    match report.store_bytes_per_session {
        Some(bytes) => println!("store: {bytes:.0} bytes per cookie session"),
        None => println!("store: bytes per session not reported by this store"),
    }
    println!(
        "in-process cache: {:.0} bytes per session measured ({} estimated)",
        report.cache_bytes_per_session, report.cache_bytes_per_session_estimate
    );
    if let (Some(bytes), Some(keys)) = (
        report.redis_bytes_per_session,
        report.redis_keys_per_session,
    ) {
        println!(
            "Redis session cache: {bytes:.0} bytes per session (INFO used_memory), {keys:.2} keys per session"
        );
    }
    println!(
        "revoked token refused {} µs after the revocation answered",
        report.revocation_refused_after_us
    );
}

/// The heading of the rows' columns.
pub(crate) fn print_header() {
    println!(
        "{:<58} {:>10} {:>9} {:>9} {:>8}",
        "scenario", "req/s", "p50 µs", "p99 µs", "ratio"
    );
}

/// One row, with its `ratio` already written.
pub(crate) fn print_row(row: &Row, ratio: &str) {
    let errors = if row.errors > 0 {
        format!("  ({} errors)", row.errors)
    } else {
        String::new()
    };
    println!(
        "{:<58} {:>10.0} {:>9} {:>9} {:>8}{errors}",
        row.scenario, row.per_second, row.p50_us, row.p99_us, ratio
    );
}
