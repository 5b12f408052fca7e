//! Each sender's messages arrive in send order even when the sender moves between worker threads
//! while its receiver stays checked out by one worker (in that worker's held set), and while other
//! threads send to the same receiver meanwhile.
//!
//! The trap this guards: a sender on worker 2 puts a message in the store mailbox of a receiver
//! that worker 1 holds; later the sender is taken into worker 1's held set (a handler there sends
//! to it) and sends again, this time into worker 1's own mailbox for the receiver. The first
//! message must still come first.

mod common;

use std::time::Duration;

use dz_core::prelude::*;
use dz_runtime_smol::Machine;
use serde::{Deserialize, Serialize};

/// Bounces the ball with its partner, and checks that each sender's numbers come in order.
#[derive(Default, Serialize, Deserialize)]
pub struct Receiver {
    partner: Option<Handle<Partner>>,
    /// Next number expected from each sender (0: the hopper, 1: the client).
    next: [u64; 2],
    out_of_order: u64,
    bounces: u64,
}

#[node]
impl Receiver {
    #[handler]
    fn meet(&mut self, partner: Handle<Partner>) {
        self.partner = Some(partner);
    }

    #[handler]
    fn ball(&mut self, ctx: &mut Context<Self>, left: u64) {
        self.bounces += 1;
        if left > 0 {
            if let Some(partner) = &self.partner {
                partner.ball(ctx, left - 1);
            }
        }
    }

    #[handler]
    fn take(&mut self, sender: u8, n: u64) {
        let next = &mut self.next[usize::from(sender)];
        if n != *next {
            self.out_of_order += 1;
        }
        *next = n + 1;
    }
}

/// The receiver's partner in the rally; now and then it kicks the hopper (which takes the hopper
/// into the rally's worker).
#[derive(Serialize, Deserialize)]
pub struct Partner {
    receiver: Handle<Receiver>,
    hopper: Option<Handle<Hopper>>,
}

#[node]
impl Partner {
    #[handler]
    fn know(&mut self, hopper: Handle<Hopper>) {
        self.hopper = Some(hopper);
    }

    #[handler]
    fn ball(&mut self, ctx: &mut Context<Self>, left: u64) {
        if left % 7 == 0 {
            if let Some(hopper) = &self.hopper {
                hopper.kick(ctx);
            }
        }
        if left > 0 {
            self.receiver.ball(ctx, left - 1);
        }
    }
}

/// Sends numbered messages to the receiver, three at a time: when the client pokes it (it runs
/// on whichever worker takes it off the run queue) and when the partner kicks it (it runs on the
/// rally's worker).
#[derive(Serialize, Deserialize)]
pub struct Hopper {
    receiver: Handle<Receiver>,
    sent: u64,
}

#[node]
impl Hopper {
    #[handler]
    fn poke(&mut self, ctx: &mut Context<Self>) {
        self.send_three(ctx);
    }

    #[handler]
    fn kick(&mut self, ctx: &mut Context<Self>) {
        self.send_three(ctx);
    }
}

impl Hopper {
    fn send_three(&mut self, ctx: &mut Context<Self>) {
        for _ in 0..3 {
            self.receiver.take(ctx, 0, self.sent);
            self.sent += 1;
        }
    }
}

fn hops(workers: usize, bounces: u64, pokes: u64) {
    let machine = Machine::builder().workers(workers).build().expect("a machine");
    let receiver = machine.spawn(Receiver::default());
    let receiver_id = machine.client().reserve_id::<Partner>();
    let for_partner = machine.transfer_handle(&receiver, &receiver_id);
    let partner =
        machine.client().spawn_with_id(receiver_id, Partner { receiver: for_partner, hopper: None }, &machine.handle());
    let hopper_id = machine.client().reserve_id::<Hopper>();
    let for_hopper = machine.transfer_handle(&receiver, &hopper_id);
    let hopper = machine.client().spawn_with_id(hopper_id, Hopper { receiver: for_hopper, sent: 0 }, &machine.handle());
    receiver.meet(&mut machine.client(), machine.transfer_handle(&partner, receiver.id()));
    partner.know(&mut machine.client(), machine.transfer_handle(&hopper, partner.id()));
    assert!(common::wait_until(Duration::from_secs(10), || machine.stats().delivered == 2));

    receiver.ball(&mut machine.client(), bounces);
    for n in 0..pokes {
        hopper.poke(&mut machine.client());
        receiver.take(&mut machine.client(), 1, n);
        std::thread::yield_now();
    }
    let all_in = || {
        let sent = machine.inspect(&hopper, |h| h.sent);
        let seen = machine.inspect(&receiver, |r| (r.bounces, r.next));
        matches!((sent, seen), (Some(sent), Some((b, next))) if b == bounces / 2 + 1 && next == [sent, pokes])
    };
    assert!(common::wait_until(Duration::from_secs(60), all_in), "{:?}", machine.stats());
    let out_of_order = machine.inspect(&receiver, |r| r.out_of_order);
    machine.shutdown();
    assert_eq!(out_of_order, Some(0), "messages overtook earlier ones of their sender");
}

#[test]
fn a_sender_hopping_between_workers_is_not_overtaken_by_itself() {
    hops(3, 400_000, 20_000);
}

#[test]
fn a_sender_hopping_between_two_workers_is_not_overtaken_by_itself() {
    hops(2, 400_000, 20_000);
}
