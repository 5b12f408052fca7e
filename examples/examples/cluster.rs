//! Three machine processes on loopback run `sum_tree`'s node types (the very types the
//! simulated example uses) for 10 seconds of real time; the root's total must equal what the
//! leaves sent.
//!
//! `cargo run --release --example cluster [-- SECONDS]`
//!
//! The example starts three copies of itself as machine processes (`cluster --machine`), each
//! listening on a free loopback port and printing its id and address; this process is a fourth
//! machine, which spawns the root here, and the root spawns one interior node on each machine
//! process, which spawns its leaves there. When the leaves are done, the totals are compared, the
//! machine processes are told to stop (their standard input closes) and the example exits 0.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dz_core::MachineHandle;
use dz_examples::sum_tree::{Interior, Leaf, Root, TreeConfig};
use dz_runtime_smol::{Machine, MachineBuilder};

const MACHINES: usize = 3;
const LEAVES_PER_MACHINE: u64 = 1_000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--machine") {
        machine_process();
        return;
    }
    let seconds = match args.first() {
        None => 10,
        Some(text) => text.parse().unwrap_or_else(|_| fail(&format!("SECONDS must be a whole number, not {text:?}"))),
    };
    std::process::exit(coordinate(seconds));
}

fn fail(why: &str) -> ! {
    eprintln!("cluster: {why}");
    std::process::exit(2);
}

fn builder() -> MachineBuilder {
    Machine::builder().listen("127.0.0.1:0").register::<Root>().register::<Interior>().register::<Leaf>()
}

/// A machine process: announce the machine, serve until standard input closes.
fn machine_process() {
    let machine = builder().build().unwrap_or_else(|e| fail(&e.to_string()));
    let handle = machine.handle();
    println!("dz-machine {} {}", handle.id(), handle.address());
    let _ = std::io::stdout().flush();
    // Until the coordinator closes our standard input (or dies), or Ctrl-C / SIGTERM.
    let stopper = machine.stopper();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().lock().read_until(b'\0', &mut sink);
        stopper.stop();
    });
    let stats = machine.run();
    eprintln!(
        "cluster: machine {} stopped: {} messages handled, {} frames in, {} frames out, {} failed sends, {} sealed messages rejected",
        handle.id(),
        stats.delivered,
        stats.frames_in,
        stats.frames_out,
        stats.send_failed,
        stats.rejected()
    );
}

struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
}

fn start_process(announced: &mpsc::Sender<Option<MachineHandle>>) -> Process {
    let exe = std::env::current_exe().unwrap_or_else(|e| fail(&format!("cannot find this program: {e}")));
    let mut child = Command::new(exe)
        .arg("--machine")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| fail(&format!("cannot start a machine process: {e}")));
    let stdin = child.stdin.take();
    if let Some(stdout) = child.stdout.take() {
        let announced = announced.clone();
        std::thread::spawn(move || {
            let handle = BufReader::new(stdout).lines().map_while(Result::ok).find_map(|line| {
                let mut words = line.strip_prefix("dz-machine ")?.split(' ');
                let (id, address) = (words.next()?, words.next()?);
                Some(MachineHandle::new(id.into(), address))
            });
            let _ = announced.send(handle);
        });
    }
    Process { child, stdin }
}

fn stop_processes(processes: &mut [Process]) {
    for process in processes.iter_mut() {
        drop(process.stdin.take());
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for process in processes.iter_mut() {
        while Instant::now() < deadline {
            if let Ok(Some(_)) = process.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Ok(None) = process.child.try_wait() {
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
    }
}

fn coordinate(seconds: u64) -> i32 {
    let wall = Instant::now();
    let (announce, announced) = mpsc::channel();
    let mut processes: Vec<Process> = (0..MACHINES).map(|_| start_process(&announce)).collect();
    let mut machines = Vec::new();
    while machines.len() < MACHINES {
        match announced.recv_timeout(Duration::from_secs(10)) {
            Ok(Some(handle)) => machines.push(handle),
            _ => {
                eprintln!("cluster: a machine process did not start");
                stop_processes(&mut processes);
                return 1;
            }
        }
    }
    machines.sort();
    let here = builder().build().unwrap_or_else(|e| fail(&e.to_string()));
    println!("cluster: {MACHINES} machine processes on loopback, and the root's machine here:");
    for machine in &machines {
        println!("  {} at {}", machine.id(), machine.address());
    }

    let config =
        TreeConfig { leaves_per_interior: LEAVES_PER_MACHINE, run_ms: seconds * 1000, ..TreeConfig::default() };
    let started = Instant::now();
    let root = here.spawn(Root::new(machines.clone(), config));
    let limit = Duration::from_secs(seconds + 15);
    let mut done = false;
    while started.elapsed() < limit {
        if here.inspect(&root, Root::is_done).unwrap_or(false) {
            done = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let ran = started.elapsed().as_secs_f64();
    let (total, expected, reports) = here.inspect(&root, |r| (r.total, r.expected, r.reports)).unwrap_or((0, 0, 0));
    let leaves = MACHINES as u64 * LEAVES_PER_MACHINE;
    let amounts = leaves * (config.run_ms / config.tick_ms);
    println!("  {leaves} leaves ticking every {} ms for {seconds} s", config.tick_ms);
    println!("  expected total (what the leaves say they sent): {expected}");
    println!("  actual total (what the root received):          {total}");
    println!("  reports to the root: {reports}");
    println!("  amounts sent by leaves: {amounts} in {ran:.2} s ({:.0} messages/s)", amounts as f64 / ran);
    let rejected = here.stats().rejected();
    println!("  messages between machines: sealed (the default); rejected at the root's machine: {rejected}");
    here.shutdown();
    stop_processes(&mut processes);
    println!("  wall: {:.2} s", wall.elapsed().as_secs_f64());
    if !done {
        eprintln!("cluster: the tree did not finish in time");
        return 1;
    }
    if total != expected || expected == 0 {
        eprintln!("cluster: the totals differ");
        return 1;
    }
    println!("  totals equal: yes");
    0
}
