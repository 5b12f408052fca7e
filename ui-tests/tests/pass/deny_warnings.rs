//! The generated code raises no warning, even under strict lints, for public and private nodes.
#![deny(warnings, missing_docs, missing_debug_implementations, rust_2018_idioms, unused_qualifications)]

use dz_core::prelude::*;
use serde::{Deserialize, Serialize};

/// A public node.
#[derive(Debug, Serialize, Deserialize)]
pub struct Counter {
    total: u64,
    peer: Option<Handle<private::Helper>>,
}

#[node]
impl Counter {
    /// Adds `n`.
    #[handler]
    fn add(&mut self, ctx: &mut Context<Self>, n: u64) {
        self.total += n;
        if let Some(peer) = &self.peer {
            peer.help(ctx, self.total);
        }
    }

    /// Sleeps a while.
    #[handler]
    async fn wait(&mut self, ctx: &mut Context<Self>, ms: u64) {
        ctx.sleep_ms(ms).await;
    }

    /// Forgets everything.
    #[handler]
    fn clear(&mut self) {
        self.total = 0;
    }

    /// An old way to add.
    #[deprecated = "use `add`"]
    #[handler]
    fn plus(&mut self, n: u64) {
        self.total += n;
    }

    #[started]
    fn begin(&mut self) {}
}

/// A node with no handlers at all.
#[derive(Debug, Serialize, Deserialize)]
pub struct Idle;

#[node]
impl Idle {}

mod private {
    use dz_core::prelude::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    pub(crate) struct Helper {
        pub(crate) counter: Option<Handle<super::Counter>>,
        secret: Secret,
    }

    #[derive(Debug, Serialize, Deserialize)]
    struct Secret(u64);

    #[node]
    impl Helper {
        #[handler]
        fn help(&mut self, ctx: &mut Context<Self>, total: u64) {
            if let Some(counter) = &self.counter {
                counter.clear(ctx);
            }
            self.secret = Secret(total);
        }

        #[handler]
        fn keep(&mut self, secret: Secret) {
            self.secret = secret;
        }
    }
}

fn main() {}
