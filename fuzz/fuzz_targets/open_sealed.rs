//! Feeds arbitrary bytes to the opener of sealed messages, to the sealer (whole and in place),
//! to the replay window, and to the JSON decoders of handles: none may panic, and nothing made
//! up may open.
#![no_main]

use std::sync::Arc;

use dz_core::security::{open, seal, seal_in_place, LinkNonce, NodeSecret, RecvLinks, ReplayWindow, NONCE_LEN};
use dz_core::{MachineHandle, NodeId, RawHandle};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let receiver = NodeId::from("Receiver_000000000001");
    let chain = [NodeId::from("Sender_0000000000001"), NodeId::from("Relay_00000000000001")];
    let key = NodeSecret::from_bytes([42; 32]).key_for_chain(&chain).expect("a chain");

    // Arbitrary bytes never open (the chance of forging a tag is 2^-128).
    assert!(open(&key, &receiver, &chain, data).is_err());

    // A real message opens; with any byte of the input xor-ed into it, it does not.
    let nonce = LinkNonce { instance: data.len() as u32, counter: 7 };
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

    // Sealing in place (as a runtime seals a batch inside its frame) makes the same bytes.
    let mut framed = nonce.to_bytes().to_vec();
    framed.extend_from_slice(data);
    seal_in_place(&key, nonce, &receiver, &chain, &mut framed, NONCE_LEN);
    assert_eq!(framed, sealed);

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

    // A receiver's links: arbitrary bytes under an arbitrary chain length are rejected and
    // counted; the real message opens once.
    let mut links = RecvLinks::default();
    let secret = || Some(NodeSecret::from_bytes([42; 32]));
    let long: Arc<[NodeId]> = (0..data.len() % 80).map(|i| NodeId::from(format!("N_{i}").as_str())).collect();
    assert!(links.open(&receiver, &long, data, secret).is_err());
    let chain: Arc<[NodeId]> = chain.to_vec().into();
    assert_eq!(links.open(&receiver, &chain, &sealed, secret).map(|p| p == data), Ok(true));
    assert!(links.open(&receiver, &chain, &sealed, secret).is_err(), "a replay");
    assert_eq!(links.rejections().total(), 2);

    // Handles from untrusted JSON: errors, never panics.
    let _ = serde_json::from_slice::<RawHandle>(data);
    let _ = serde_json::from_slice::<MachineHandle>(data);
});
