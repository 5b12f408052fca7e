//! Tasks run beside their node in real time, and end with it.

mod common;

use std::time::Duration;

use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize)]
pub struct Tasker {
    pub beats: u64,
}

#[node]
impl Tasker {
    /// Starts a task that sends this node a beat every 5 ms, `n` times (0: forever).
    #[handler]
    fn begin(&mut self, ctx: &mut Context<Self>, n: u64) {
        ctx.create_task(move |mut ctx| async move {
            let mut sent = 0;
            while n == 0 || sent < n {
                ctx.sleep_ms(5).await;
                ctx.send_self(TaskerMessage::Beat);
                sent += 1;
            }
        });
    }

    #[handler]
    fn beat(&mut self) {
        self.beats += 1;
    }
}

#[test]
fn a_task_sleeps_and_sends_to_its_node() {
    let machine = common::client();
    let tasker = machine.spawn(Tasker::default());
    tasker.begin(&mut machine.client(), 10);
    assert!(common::wait_until(Duration::from_secs(10), || machine.inspect(&tasker, |t| t.beats) == Some(10)));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(machine.inspect(&tasker, |t| t.beats), Some(10));
}

#[test]
fn a_task_ends_with_its_node() {
    let machine = common::client();
    let tasker = machine.spawn(Tasker::default());
    tasker.begin(&mut machine.client(), 0);
    assert!(common::wait_until(Duration::from_secs(10), || machine.inspect(&tasker, |t| t.beats >= 3) == Some(true)));
    machine.terminate(&tasker);
    assert!(common::wait_until(Duration::from_secs(10), || !machine.is_alive(tasker.id())));
    let delivered = machine.stats().delivered;
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(machine.stats().delivered, delivered, "no beats after the node ended");
    assert_eq!(machine.node_count(), 1, "only the client node is left");
}
