//! Everything a node can use, together, and run on the simulator.

use dz_core::prelude::*;
use dz_core::sim::Simulation;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Ponger {
    served: u64,
    napped: u64,
    log: Vec<String>,
}

#[node(name = "features.Ponger")]
impl Ponger {
    /// Answers a ping.
    #[handler]
    fn ping(&mut self, ctx: &mut Context<Self>, reply_to: Handle<Pinger>, n: u64) {
        self.served += 1;
        reply_to.pong(ctx, n);
    }

    /// Sleeps, then counts the nap.
    #[handler]
    async fn nap(&mut self, ctx: &mut Context<Self>, ms: u64) {
        ctx.sleep_ms(ms).await;
        self.napped += ms;
    }

    /// An async handler without the context.
    #[handler]
    async fn note(&mut self, text: String) {
        self.log.push(text);
    }

    /// No context, no arguments: a unit message.
    #[handler]
    fn reset(&mut self) {
        self.served = self.helper();
    }

    #[started]
    fn begin(&mut self, ctx: &mut Context<'_, Self>) {
        let _ = ctx.id();
        self.log.push("started".to_owned());
    }

    #[stopping]
    fn end(&mut self) {
        self.log.push("stopping".to_owned());
    }

    fn helper(&self) -> u64 {
        0
    }

    /// Compiled out, and so is everything generated for it.
    #[cfg(any())]
    #[handler]
    fn never(&mut self, n: u64) {
        let _ = n;
    }

    /// Compiled in.
    #[cfg(all())]
    #[handler]
    fn always(&mut self) {}
}

#[derive(Serialize, Deserialize)]
pub struct Pinger {
    ponger: Option<Handle<Ponger>>,
    pongs: Vec<u64>,
}

#[node]
impl Pinger {
    #[handler]
    fn start(&mut self, ctx: &mut Context<Pinger>, ponger: Handle<Ponger>, mut rounds: u64) {
        let me = ctx.new_handle(ponger.id());
        while rounds > 0 {
            ponger.ping(ctx, me.clone(), rounds);
            rounds -= 1;
        }
        ponger.nap(ctx, 250);
        ponger.note(ctx, "hello".to_owned());
        self.ponger = Some(ponger);
    }

    #[handler]
    fn pong(&mut self, n: u64) {
        self.pongs.push(n);
    }
}

mod private {
    use dz_core::prelude::*;
    use serde::{Deserialize, Serialize};

    /// A node in a private module, holding a handle to another private node.
    #[derive(Serialize, Deserialize)]
    pub(crate) struct Hidden {
        pub(crate) peer: Option<Handle<Peer>>,
    }

    #[node]
    impl Hidden {
        #[handler]
        fn meet(&mut self, peer: Handle<Peer>) {
            self.peer = Some(peer);
        }
    }

    #[derive(Serialize, Deserialize)]
    pub(crate) struct Peer;

    #[node]
    impl Peer {
        #[handler]
        fn greet(&mut self, ctx: &mut Context<Self>, from: Handle<Hidden>, adopt: Handle<Self>) {
            let _ = (ctx, from, adopt);
        }
    }
}

fn main() {
    assert_eq!(<Ponger as dz_core::Node>::TYPE_NAME, "features.Ponger");
    assert_eq!(<Pinger as dz_core::Node>::TYPE_NAME, "Pinger");
    let msg = PongerMessage::Nap { ms: 5 };
    assert_eq!(dz_core::Message::name(&msg), "features.Ponger::nap");
    assert_eq!(format!("{msg:?}"), r#"features.Ponger::nap {"ms":5}"#);
    assert_eq!(format!("{:?}", PongerMessage::Reset), "features.Ponger::reset");
    assert_eq!(serde_json::to_string(&PongerMessage::Reset).unwrap(), r#""Reset""#);

    let mut sim = Simulation::new(3);
    let (a, b) = (sim.add_machine(), sim.add_machine());
    let ponger = sim.spawn(Ponger { served: 0, napped: 0, log: Vec::new() }, &a);
    let pinger = sim.spawn(Pinger { ponger: None, pongs: Vec::new() }, &b);
    let for_pinger = sim.transfer_handle(&ponger, pinger.id());
    sim.send(&pinger, PingerMessage::Start { ponger: for_pinger, rounds: 3 });
    sim.run_until_idle();
    assert_eq!(sim.inspect(&ponger, |p| p.served), Some(3));
    assert_eq!(sim.inspect(&ponger, |p| p.napped), Some(250));
    assert_eq!(sim.inspect(&ponger, |p| p.log.clone()), Some(vec!["started".to_owned(), "hello".to_owned()]));
    assert_eq!(sim.inspect(&pinger, |p| p.pongs.clone()), Some(vec![3, 2, 1]));
    sim.send(&ponger, PongerMessage::Reset);
    sim.run_until_idle();
    assert_eq!(sim.inspect(&ponger, |p| p.served), Some(0));

    let hidden = sim.spawn(private::Hidden { peer: None }, &a);
    let peer = sim.spawn(private::Peer, &b);
    sim.send(&hidden, private::HiddenMessage::Meet { peer });
    sim.run_until_idle();
    assert_eq!(sim.inspect(&hidden, |h| h.peer.is_some()), Some(true));
}
