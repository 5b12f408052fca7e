//! An idle machine uses (next to) no CPU: its threads sleep until there is work.

mod common;

use std::time::Duration;

use dz_examples::ping_pong::Ponger;

/// This process's user + system CPU time in clock ticks (`/proc/self/stat` fields 14 and 15).
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3, so fields 14 and 15 are at 11 and 12.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

#[test]
fn an_idle_machine_uses_under_50_ms_of_cpu_in_5_s() {
    let Some(_) = cpu_ticks() else {
        eprintln!("no /proc/self/stat here: skipped");
        return;
    };
    let (a, b) = (common::client(), common::server());
    // Some nodes, a live connection, a finished conversation: then nothing to do.
    let (completed, _) = common::ping_pong(&a, &b, 100, Duration::from_secs(30));
    assert_eq!(completed, 100);
    for _ in 0..100 {
        b.spawn(Ponger::default());
    }
    std::thread::sleep(Duration::from_millis(200));

    let before = cpu_ticks().unwrap_or(0);
    std::thread::sleep(Duration::from_secs(5));
    let after = cpu_ticks().unwrap_or(u64::MAX);
    // Linux counts CPU time in ticks of 10 ms (USER_HZ = 100).
    let used_ms = after.saturating_sub(before) * 10;
    eprintln!("two idle machines used {used_ms} ms of CPU in 5 s");
    assert!(used_ms < 50, "two idle machines used {used_ms} ms of CPU in 5 s");
    a.shutdown();
    b.shutdown();
}
