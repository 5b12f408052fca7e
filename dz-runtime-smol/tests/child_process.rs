//! Machines in other OS processes: one serves, then is killed mid-run, and the machine here
//! counts its failed sends and goes on with the others; another stops cleanly on SIGTERM.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use dz_core::prelude::*;
use dz_core::MachineHandle;
use dz_examples::ping_pong::{Pinger, Ponger, PongerMessage};
use dz_runtime_smol::Machine;
use serde::{Deserialize, Serialize};

/// Tells its watcher when it stops.
#[derive(Serialize, Deserialize)]
pub struct Guard {
    watcher: Handle<Watcher>,
}

#[node]
impl Guard {
    #[handler]
    fn noop(&mut self) {}

    #[stopping]
    fn goodbye(&mut self, ctx: &mut Context<Self>) {
        self.watcher.gone(ctx);
    }
}

/// Counts guards gone.
#[derive(Default, Serialize, Deserialize)]
pub struct Watcher {
    pub gone: u64,
}

#[node]
impl Watcher {
    #[handler]
    fn gone(&mut self) {
        self.gone += 1;
    }
}

/// Set in the child's environment: the test `child_machine` then runs a machine, until its
/// standard input closes (`stdin`) or until SIGINT or SIGTERM (`signal`).
const CHILD: &str = "DZ_RUNTIME_SMOL_TEST_CHILD";

/// Not a test of its own: the body of the child process (a no-op unless [`CHILD`] is set).
#[test]
fn child_machine() {
    let Some(mode) = std::env::var_os(CHILD) else { return };
    let machine = Machine::builder().register::<Ponger>().register::<Guard>().build().expect("a machine");
    let handle = machine.handle();
    println!("dz-machine {} {}", handle.id(), handle.address());
    let _ = std::io::stdout().flush();
    if mode == "signal" {
        machine.run();
    } else {
        let mut rest = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut rest);
        machine.shutdown();
    }
}

/// Starts a machine process; returns it and its handle.
fn start_child(mode: &str) -> (Child, MachineHandle) {
    let exe = std::env::current_exe().expect("this test binary");
    let mut child = Command::new(exe)
        .args(["child_machine", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("a child process");
    let stdout = child.stdout.take().expect("the child's stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
        let found = lines.by_ref().find_map(|line| {
            // The test harness may print `test child_machine ... ` before it.
            let at = line.find("dz-machine ")?;
            let mut words = line[at + "dz-machine ".len()..].split(' ');
            let (id, address) = (words.next()?.to_string(), words.next()?.to_string());
            Some(MachineHandle::new(id.into(), address))
        });
        let _ = tx.send(found);
        // Keep reading, so that the child's last words do not meet a closed pipe.
        lines.for_each(drop);
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Some(handle)) => (child, handle),
        other => {
            let _ = child.kill();
            panic!("the child machine did not start: {other:?}");
        }
    }
}

#[test]
fn sigterm_stops_a_machine_process_cleanly() {
    let (mut child, remote) = start_child("signal");
    let here = common::client();
    let watcher = here.spawn(Watcher::default());
    let mut client = here.client();
    let id = client.reserve_id::<Guard>();
    let for_guard = here.transfer_handle(&watcher, &id);
    let guard = client.spawn_with_id(id, Guard { watcher: for_guard }, &remote);
    guard.noop(&mut client);
    // The guard is up once the child has handled `noop`; give it a moment, then signal.
    std::thread::sleep(Duration::from_millis(300));
    match Command::new("kill").args(["-TERM", &child.id().to_string()]).status() {
        Ok(status) if status.success() => {}
        other => {
            let _ = child.kill();
            eprintln!("cannot send SIGTERM ({other:?}): skipped");
            return;
        }
    }
    let exited = common::wait_until(Duration::from_secs(10), || matches!(child.try_wait(), Ok(Some(_))));
    if !exited {
        let _ = child.kill();
    }
    assert!(exited, "the machine process stops on SIGTERM");
    assert!(child.wait().expect("its status").success(), "and exits normally");
    // Its nodes' stopping hooks ran, and what they sent went out before the connection closed.
    assert!(common::wait_until(Duration::from_secs(5), || here.inspect(&watcher, |w| w.gone) == Some(1)));
}

#[test]
fn a_machine_process_serves_and_then_dies_mid_run() {
    let (mut child, remote) = start_child("stdin");
    let here = common::client();
    let ponger = here.spawn_on(Ponger::default(), &remote);
    let pinger = here.spawn(Pinger::default());
    let for_pinger = here.transfer_handle(&ponger, pinger.id());
    pinger.start(&mut here.client(), for_pinger, 1_000);
    let finished = common::wait_until(Duration::from_secs(30), || {
        here.inspect(&pinger, |p| p.completed == 1_000).unwrap_or(false)
    });
    assert!(finished, "1,000 round trips with a machine in another process");
    assert_eq!(here.stats().send_failed, 0);

    // Killed mid-run: no goodbye, no clean close.
    let _ = child.kill();
    let _ = child.wait();
    for n in 0..50 {
        here.send(&ponger, PongerMessage::Ping { n });
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        common::wait_until(Duration::from_secs(10), || here.stats().send_failed >= 45),
        "sends to the dead machine fail and are counted: {:?}",
        here.stats()
    );
    // The machine here goes on with another peer.
    let other = common::server();
    assert_eq!(common::ping_pong(&here, &other, 100, Duration::from_secs(30)), (100, 100));
}
