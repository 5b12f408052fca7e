//! The `cluster` example (three machine processes on loopback) finishes with equal totals.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The example's binary, which `cargo test` builds beside this test's (`target/<profile>/examples`).
fn example_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    let path = profile_dir.join("examples").join(format!("cluster{}", std::env::consts::EXE_SUFFIX));
    path.exists().then_some(path)
}

#[test]
fn three_machine_processes_agree_on_the_total() {
    let Some(binary) = example_binary() else {
        eprintln!("the cluster example is not built: skipped");
        return;
    };
    let started = Instant::now();
    let output = Command::new(binary).arg("2").output().expect("the cluster example runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("totals equal: yes"), "{stdout}");
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
}
