//! The simulator's reliable links work unchanged between real machines.

mod common;

use std::time::Duration;

use dz_core::prelude::*;
use dz_core::reliable::{Reliable, ReliableReceiver, ReliableSender};
use dz_runtime_smol::Machine;
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize)]
pub struct Log {
    lines: Vec<u64>,
}

#[node]
impl Log {
    #[handler]
    fn line(&mut self, n: u64) {
        self.lines.push(n);
    }
}

#[derive(Serialize, Deserialize)]
pub struct Writer {
    log: Handle<Log>,
    link: Option<Reliable<Log>>,
}

#[node]
impl Writer {
    #[handler]
    fn write(&mut self, ctx: &mut Context<Self>, from: u64, to: u64) {
        let link = match &self.link {
            Some(link) => link.clone(),
            None => Reliable::connect(ctx, &self.log, Default::default()),
        };
        for n in from..to {
            link.send(ctx, LogMessage::Line { n });
        }
        self.link = Some(link);
    }
}

fn machine() -> Machine {
    Machine::builder()
        .listen("127.0.0.1:0")
        .register::<Log>()
        .register::<Writer>()
        .register::<ReliableSender>()
        .register::<ReliableReceiver>()
        .build()
        .expect("a machine on loopback")
}

#[test]
fn a_reliable_link_delivers_everything_in_order_between_machines() {
    let (a, b) = (machine(), machine());
    let log = a.spawn_on(Log::default(), &b.handle());
    let writer = a.spawn(Writer { log: log.clone(), link: None });
    writer.write(&mut a.client(), 0, 500);
    writer.write(&mut a.client(), 500, 1_000);
    let done = common::wait_until(Duration::from_secs(20), || b.inspect(&log, |l| l.lines.len()) == Some(1_000));
    assert!(done, "got {:?} lines", b.inspect(&log, |l| l.lines.len()));
    assert_eq!(b.inspect(&log, |l| l.lines.clone()), Some((0..1_000).collect()));
    a.shutdown();
    b.shutdown();
}
