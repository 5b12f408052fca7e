//! The generated code names everything by absolute path: it compiles with no prelude, with
//! `dz_core` reached under other names, and with handler arguments named like its own locals.
#![no_implicit_prelude]

extern crate dz_core as renamed;

mod through_use {
    use ::dz_core as dz;
    use ::serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    pub struct Odd {
        pub sum: u64,
    }

    #[dz::node(crate = "dz")]
    impl Odd {
        /// Arguments named like the generated code's locals.
        #[dz::handler]
        fn locals(&mut self, ctx: &mut dz::Context<Self>, msg: u64, this: u64, raw: u64, f: u64) {
            let _ = ctx;
            self.sum = msg + this + raw + f;
        }

        /// No context, but an argument called `ctx`.
        #[dz::handler]
        async fn named_ctx(&mut self, ctx: u64) {
            self.sum = ctx;
        }

        /// A raw identifier as a handler name and as an argument.
        #[dz::handler]
        fn r#type(&mut self, r#match: ::std::string::String) {
            let _ = r#match;
        }

        #[dz::started]
        fn started(&mut self, ctx: &mut dz::Context<Self>) {
            let _ = ctx;
        }
    }
}

mod through_extern_crate {
    use ::serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    pub enum Light {
        On,
        Off,
    }

    #[::renamed::node(crate = "::renamed", name = "hygiene.Light")]
    impl Light {
        #[::renamed::handler]
        fn toggle(&mut self, ctx: &mut ::renamed::Context<Self>, peer: ::renamed::Handle<super::through_use::Odd>) {
            *self = match self {
                Light::On => Light::Off,
                Light::Off => Light::On,
            };
            peer.locals(ctx, 1, 2, 3, 4);
            peer.named_ctx(ctx, 5);
            peer.r#type(ctx, ::std::string::String::new());
        }

        #[::renamed::stopping]
        fn stopping(&mut self) {}
    }
}

fn main() {
    let msg = through_use::OddMessage::Type { r#match: ::std::string::String::new() };
    ::std::assert_eq!(::renamed::Message::name(&msg), "Odd::type");
    ::std::assert_eq!(<through_extern_crate::Light as ::renamed::Node>::TYPE_NAME, "hygiene.Light");
}
