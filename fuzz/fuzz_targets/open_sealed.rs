//! Feeds arbitrary bytes to the opener of sealed messages, to the replay window, and to the
//! JSON decoders of handles: none may panic, and nothing made up may open.
#![no_main]

use dz_core::security::{open, seal, LinkNonce, NodeSecret, ReplayWindow};
use dz_core::{MachineHandle, NodeId, RawHandle};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let receiver = NodeId::from("Receiver_000000000001");
    let chain = [NodeId::from("Sender_0000000000001"), NodeId::from("Relay_00000000000001")];
    let key = NodeSecret::from_bytes([42; 32]).key_for_chain(&chain).expect("a chain");

    // Arbitrary bytes never open (the chance of forging a tag is 2^-128).
    assert!(open(&key, &receiver, &chain, data).is_err());

    // A real message opens; with any byte of the input xor-ed into it, it does not.
    let nonce = LinkNonce { instance: 3, counter: 7 };
    let sealed = seal(&key, nonce, &receiver, &chain, data);
    assert_eq!(open(&key, &receiver, &chain, &sealed).map(|(n, p)| (n, p == data)), Ok((nonce, true)));
    if let Some((&first, _)) = data.split_first() {
        if first != 0 {
            let mut bad = sealed.clone();
            let at = data.len() % bad.len();
            bad[at] ^= first;
            assert!(open(&key, &receiver, &chain, &bad).is_err());
        }
    }

    // The replay window takes any counters without panicking, and never accepts one twice.
    let mut window = ReplayWindow::default();
    for chunk in data.chunks(8) {
        let mut bytes = [0u8; 8];
        bytes[..chunk.len()].copy_from_slice(chunk);
        let counter = u64::from_le_bytes(bytes) % 512;
        if window.accept(counter).is_ok() {
            assert!(window.accept(counter).is_err());
        }
    }

    // Handles from untrusted JSON: errors, never panics.
    let _ = serde_json::from_slice::<RawHandle>(data);
    let _ = serde_json::from_slice::<MachineHandle>(data);
});
